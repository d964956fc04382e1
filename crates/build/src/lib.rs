//! Dockerfile builds, the frontend half: the Dockerfile grammar (`dockerfile`), BuildKit's
//! variable expansion (`expand`) and `.dockerignore` (`ignore`). The executor that runs the
//! steps as containers and commits layers is the engine's (`berth_engine::build`).

pub mod dockerfile;
pub mod expand;
pub mod ignore;
