#!/usr/bin/env bash
# Issue 7's interoperability check with real Docker (not a test: tests never depend on dockerd):
# an image built and pushed by Berth is pulled and run by Docker, and the other way round,
# through Debian's docker-registry and through `berth registry serve`. Needs docker.io
# (dockerd) and docker-registry. Usage: scripts/interop-docker.sh  (BERTH=/path/to/berth reuses a
# built binary; else a release build). Prints one "… runs …: made by …" line per direction.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build_berth
start_berth; start_docker
s=$(registry_script distribution 5190); bash "$s"
B="$DOCKER_CLI -H unix://$berth_sock"; D="$DOCKER_CLI -H unix://$docker_sock"
import_busybox "$B"; import_busybox "$D"
ctx=$BENCH_DIR/ictx; mkdir -p $ctx; echo "made by berth" > $ctx/who; printf 'FROM busybox\nCOPY who /who\nCMD ["cat","/who"]\n' > $ctx/Dockerfile
DOCKER_BUILDKIT=0 $B build -q -t 127.0.0.1:5190/x/from-berth:1 $ctx
$B push 127.0.0.1:5190/x/from-berth:1 | tail -2
echo "docker runs berth's: $($D run --rm 127.0.0.1:5190/x/from-berth:1)"
echo "made by docker" > $ctx/who
DOCKER_BUILDKIT=0 $D build -q -t 127.0.0.1:5190/x/from-docker:1 $ctx
$D push 127.0.0.1:5190/x/from-docker:1 | tail -2
echo "berth runs docker's: $($B run --rm 127.0.0.1:5190/x/from-docker:1)"
$B inspect --format '{{json .RepoDigests}}' 127.0.0.1:5190/x/from-docker:1
# and through Berth's own registry server
s2=$(registry_script berth 5191); bash "$s2"
$D tag 127.0.0.1:5190/x/from-docker:1 127.0.0.1:5191/y/from-docker:1
$D push 127.0.0.1:5191/y/from-docker:1 | tail -1
$B rmi -f 127.0.0.1:5190/x/from-docker:1 >/dev/null
echo "berth runs docker's via berth registry: $($B run --rm 127.0.0.1:5191/y/from-docker:1)"
$B tag 127.0.0.1:5190/x/from-berth:1 127.0.0.1:5191/y/from-berth:1
$B push 127.0.0.1:5191/y/from-berth:1 | tail -1
$D rmi -f 127.0.0.1:5190/x/from-berth:1 >/dev/null
echo "docker runs berth's via berth registry: $($D run --rm 127.0.0.1:5191/y/from-berth:1)"
