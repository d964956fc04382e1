pub mod build;
pub mod container;
pub mod events;
pub mod exec;
pub mod fs;
pub mod health_flags;
pub mod image;
pub mod mount_opts;
pub mod net_opts;
pub mod network;
pub mod prune;
pub mod registry;
pub mod resources;
pub mod run_opts;
pub mod system;
pub mod volume;

/// Parses one command's flags in unit tests, as clap does after the command's name.
#[cfg(test)]
pub(crate) fn try_parse_args<A: clap::Args>(args: &[&str]) -> Result<A, clap::Error> {
    use clap::Parser;
    #[derive(Parser, Debug)]
    struct T<A: clap::Args> {
        #[command(flatten)]
        a: A,
    }
    let mut argv = vec!["x"];
    argv.extend_from_slice(args);
    T::<A>::try_parse_from(argv).map(|t| t.a)
}

#[cfg(test)]
pub(crate) fn parse_args<A: clap::Args>(args: &[&str]) -> A {
    try_parse_args(args).unwrap()
}
