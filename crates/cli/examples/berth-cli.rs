//! Runs the CLI alone (handy for trying it against any Docker-API daemon with -H).
fn main() {
    std::process::exit(berth_cli::main_with_args(std::env::args_os().collect()));
}
