#!/usr/bin/env bash
# Builds the busybox image, imports it and runs a container with the berth CLI (which starts
# the daemon itself if none is running). Run as root after scripts/setup.sh and a build.
set -euo pipefail
cd "$(dirname "$0")/.."
BERTH=${BERTH:-target/release/berth}
[ -x "$BERTH" ] || BERTH=target/debug/berth
tar=$(mktemp /tmp/busybox.XXXXXX.tar)
trap 'rm -f "$tar"' EXIT
bash scripts/busybox-image.sh "$tar"
"$BERTH" import "$tar" busybox:latest
"$BERTH" run --rm busybox echo "hello from a Berth container"
"$BERTH" ps -a
