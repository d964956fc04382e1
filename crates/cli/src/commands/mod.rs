pub mod container;
pub mod image;
pub mod resources;
pub mod run_opts;
pub mod system;
