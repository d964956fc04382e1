//! `berth`: one binary for every role. `berth shim` must be dispatched before anything starts
//! a thread: it runs libcontainer, whose raw clone is unsafe in a multi-threaded process.

mod daemon;
mod init;

use std::ffi::OsString;

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    // `--init` runs this binary as /sbin/docker-init inside the container.
    let invoked_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if invoked_as == "docker-init" {
        std::process::exit(init::main(args.get(1..).unwrap_or(&[])));
    }
    let role = args.get(1).and_then(|a| a.to_str()).unwrap_or("");
    let code = match role {
        "shim" => match (args.get(2), args.get(3)) {
            (Some(role), Some(dir)) if role == "exec" => {
                berth_runtime::shim::exec_main(std::path::Path::new(dir))
            }
            (Some(dir), _) => berth_runtime::shim::shim_main(std::path::Path::new(dir)),
            (None, _) => {
                eprintln!("usage: berth shim [exec] <state-dir>");
                2
            }
        },
        "init" => init::main(args.get(2..).unwrap_or(&[])),
        "daemon" => daemon::main(args),
        "registry" => berth_registry::main(args),
        _ => berth_cli::main_with_args(args),
    };
    std::process::exit(code);
}
