pub mod container;
pub mod events;
pub mod fs;
pub mod health_flags;
pub mod image;
pub mod resources;
pub mod run_opts;
pub mod system;
