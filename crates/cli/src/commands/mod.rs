pub mod container;
pub mod health_flags;
pub mod image;
pub mod run_opts;
pub mod system;
