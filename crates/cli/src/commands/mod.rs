pub mod container;
pub mod exec;
pub mod image;
pub mod run_opts;
pub mod system;
