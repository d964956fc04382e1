#!/usr/bin/env bash
# Networking, Berth vs Docker (Debian's docker.io, with its default bridge and iptables), each
# daemon inside a private network namespace (a "host") joined by a veth to a second one (an
# "outside" machine), so the real host's links and rules are never touched:
#   1. `docker run --rm busybox true` on the default bridge vs `--network none`, median of N
#   2. TCP throughput container -> container on one user-defined network (HTTP GET of a file),
#      median of --transfers
#   3. TCP throughput outside machine -> published port (same file), median of --transfers
# Usage: bench/network.sh [--runs N] [--mib N] [--transfers N]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=30 MIB=1024 TRANSFERS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --mib) MIB=$2; shift 2;;
    --transfers) TRANSFERS=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
source bench/lib.sh
build_berth

# Namespaces pinned under $BENCH_DIR: "host" for the daemon, "out" for the outside client.
pin_ns() { touch "$1"; unshare --net="$1" true; }
HOST_NS=$BENCH_DIR/host.netns OUT_NS=$BENCH_DIR/out.netns
pin_ns "$HOST_NS"; pin_ns "$OUT_NS"
inhost() { nsenter --net="$HOST_NS" -- "$@"; }
inout() { nsenter --net="$OUT_NS" -- "$@"; }
inhost ip link set lo up; inout ip link set lo up
inhost ip link add up0 type veth peer name up1
inhost ip link set up1 netns "$OUT_NS"
inhost ip addr add 10.250.0.1/30 dev up0; inhost ip link set up0 up
inout ip addr add 10.250.0.2/30 dev up1; inout ip link set up1 up
unpin() { umount "$HOST_NS" "$OUT_NS" 2>/dev/null || true; }

results=$BENCH_DIR/results.tsv
printf 'engine\trun_bridge_ms\trun_none_ms\tbridge_cost_ms\tc2c_MiB_s\toutside_MiB_s\n' > "$results"

# Seconds (float) a command takes.
elapsed() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}'; }
median_of() { local n=$1; shift; for _ in $(seq "$n"); do "$@"; echo; done | sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
mib_s() { awk -v m="$MIB" -v s="$1" 'BEGIN{printf "%.0f", m/s}'; }

bench_engine() { # name socket
  local name=$1 sock=$2 d="$DOCKER_CLI -H unix://$2"
  import_busybox "$d"
  $d run --rm busybox true >/dev/null && $d run --rm --network none busybox true >/dev/null
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$BENCH_DIR/$name-bridge.json" "$d run --rm busybox true" >/dev/null
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$BENCH_DIR/$name-none.json" "$d run --rm --network none busybox true" >/dev/null
  local bridge none
  bridge=$(hyperfine_median_ms "$BENCH_DIR/$name-bridge.json"); none=$(hyperfine_median_ms "$BENCH_DIR/$name-none.json")

  $d network create benchnet >/dev/null
  $d run -d --name srv --network benchnet -p 8080:80 busybox sh -c \
    "mkdir /www && dd if=/dev/zero of=/www/big bs=1M count=$MIB 2>/dev/null && touch /www/ready && exec httpd -f -p 80 -h /www" >/dev/null
  $d run -d --name cli --network benchnet busybox sleep 3600 >/dev/null
  for _ in $(seq 600); do $d exec srv test -f /www/ready && break; sleep 0.1; done
  local ip; ip=$($d inspect -f '{{.NetworkSettings.Networks.benchnet.IPAddress}}' srv)
  # busybox's wget crashes in the static build; nc speaks HTTP/1.0 well enough.
  local get="printf 'GET /big HTTP/1.0\\r\\n\\r\\n' | nc $ip 80 >/dev/null"
  $d exec cli sh -c "$get"   # warm the page cache
  local c2c out
  c2c=$(median_of "$TRANSFERS" elapsed $d exec cli sh -c "$get")
  out=$(median_of "$TRANSFERS" elapsed inout curl -s -o /dev/null "http://10.250.0.1:8080/big")
  $d rm -f srv cli >/dev/null; $d network rm benchnet >/dev/null
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$bridge" "$none" "$(awk -v a="$bridge" -v b="$none" 'BEGIN{printf "%.1f", a-b}')" \
    "$(mib_s "$c2c")" "$(mib_s "$out")" >> "$results"
}

# Without --fork, nsenter execs the daemon: $! is the daemon's own PID.
stop_pid() { kill "$1" 2>/dev/null || true; for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; kill -9 "$1" 2>/dev/null || true; }
mkdir -p "$BENCH_DIR/berth"
nsenter --net="$HOST_NS" -- "$BERTH" daemon -H "unix://$BENCH_DIR/berth/berth.sock" --data-root "$BENCH_DIR/berth/data" \
  --exec-root "$BENCH_DIR/berth/run" --log-level warn 2>"$BENCH_DIR/berth/daemon.log" &
pids+=($!); berth_pid=$!
wait_sock "$BENCH_DIR/berth/berth.sock"
bench_engine berth "$BENCH_DIR/berth/berth.sock"
stop_pid "$berth_pid"

if command -v dockerd >/dev/null; then
  mkdir -p "$BENCH_DIR/docker"
  nsenter --net="$HOST_NS" -- dockerd -H "unix://$BENCH_DIR/docker/docker.sock" --data-root "$BENCH_DIR/docker/data" \
    --exec-root "$BENCH_DIR/docker/run" --pidfile "$BENCH_DIR/docker/docker.pid" \
    >"$BENCH_DIR/docker/daemon.log" 2>&1 &
  pids+=($!); docker_pid=$!
  if wait_sock "$BENCH_DIR/docker/docker.sock"; then
    bench_engine docker "$BENCH_DIR/docker/docker.sock"
  fi
  stop_pid "$docker_pid"
fi
sleep 1; unpin

column -t -s $'\t' "$results"
echo "raw data: $BENCH_DIR"
