//! Stages and steps.
