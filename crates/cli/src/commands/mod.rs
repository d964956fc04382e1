pub mod container;
pub mod image;
pub mod prune;
pub mod run_opts;
pub mod system;
