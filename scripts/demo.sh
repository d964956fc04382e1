#!/usr/bin/env bash
# One command from a fresh Debian machine (as root): install what is needed, build, build the
# busybox image from Debian's busybox-static, import it and run a container. The berth CLI
# starts the daemon by itself (on /run/berth/berth.sock, data in /var/lib/berth) when none is
# running; stop it afterwards with: kill "$(cat /run/berth/berth.pid)".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -q -p berth
BERTH=target/x86_64-unknown-linux-gnu/release/berth
tar=$(mktemp /tmp/busybox.XXXXXX.tar)
trap 'rm -f "$tar"' EXIT
bash scripts/busybox-image.sh "$tar"
"$BERTH" import "$tar" busybox:latest
"$BERTH" run --rm busybox echo "hello from a Berth container"
"$BERTH" ps -a
