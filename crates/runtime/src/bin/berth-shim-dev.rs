//! Development stand-in for `berth shim <state_dir>`, so this crate's
//! integration tests can run the real shim without the `berth` binary.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Accept both `berth-shim-dev <dir>` and `berth-shim-dev shim <dir>`.
    let dir = match args.as_slice() {
        [_, dir] => dir,
        [_, cmd, dir] if cmd == "shim" => dir,
        _ => {
            eprintln!("usage: berth-shim-dev [shim] <state_dir>");
            std::process::exit(2);
        }
    };
    std::process::exit(berth_runtime::shim_main(std::path::Path::new(dir)));
}
