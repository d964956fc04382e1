#!/usr/bin/env bash
# Berth vs Docker (and Podman's docker-compatible service) through the same docker CLI:
#   1. `docker run --rm busybox true` latency, median of 30 (hyperfine)
#   2. daemon idle RSS
#   3. RSS added per running container (50 `sleep` containers): shims + daemon growth
#   4. `GET /containers/json?all=1` (what `docker ps -a` asks) with 200 stopped containers
# Engines that are not installed are skipped. Everything runs on private sockets and data
# roots under $BENCH_DIR and is stopped (by PID) at the end.
# Usage: bench/run.sh [--runs N] [--containers N] [--stopped N]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=30 CONTAINERS=50 STOPPED=200
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --containers) CONTAINERS=$2; shift 2;;
    --stopped) STOPPED=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
DOCKER_CLI=${DOCKER_CLI:-/usr/local/bin/docker}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/berth-bench.XXXXXX)}
export DOCKER_CONFIG=$BENCH_DIR/docker-config DOCKER_CLI_HINTS=false
mkdir -p "$DOCKER_CONFIG"
command -v hyperfine >/dev/null || { echo "hyperfine missing: run scripts/setup.sh" >&2; exit 1; }

cargo build --release -q -p berth
BERTH=$PWD/target/x86_64-unknown-linux-gnu/release/berth
bash scripts/busybox-image.sh "$BENCH_DIR/busybox.tar"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  grep -o "$BENCH_DIR[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
wait_sock() { for _ in $(seq 200); do curl -sf --unix-socket "$1" http://x/_ping >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }

results=$BENCH_DIR/results.tsv
printf 'engine\trun_median_ms\tidle_rss_kb\tper_container_rss_kb\tper_container_pss_kb\tps_all_api_ms\tdocker_ps_a_ms\n' > "$results"

bench_engine() { # name socket daemon_pid [extra per-container pids command]
  local name=$1 sock=$2 dpid=$3 child_pattern=$4
  local d="$DOCKER_CLI -H unix://$sock"
  $d rmi -f busybox:latest >/dev/null 2>&1 || true
  $d import "$BENCH_DIR/busybox.tar" busybox:latest >/dev/null
  local idle run_ms="n/a" per_rss="n/a" per_pss="n/a"
  if $d run --rm busybox true >/dev/null 2>"$BENCH_DIR/$name-run.err"; then   # also warms caches
    sleep 2
    idle=$(rss_kb "$dpid")
    hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$BENCH_DIR/$name-run.json" "$d run --rm busybox true" >/dev/null
    run_ms=$(python3 -c "import json,statistics;print(round(statistics.median(json.load(open('$BENCH_DIR/$name-run.json'))['results'][0]['times'])*1000,1))")

    local before_d; before_d=$(rss_kb "$dpid")
    for i in $(seq "$CONTAINERS"); do $d run -d --network none --name "s$i" busybox sleep 3600 >/dev/null; done
    sleep 2
    local after_d; after_d=$(rss_kb "$dpid")
    local shim_rss=0 shim_pss=0
    for p in $(pgrep -f "$child_pattern" || true); do
      shim_rss=$((shim_rss + $(rss_kb "$p"))); shim_pss=$((shim_pss + $(pss_kb "$p")))
    done
    per_rss=$(( (shim_rss + after_d - before_d) / CONTAINERS ))
    per_pss=$(( (shim_pss + after_d - before_d) / CONTAINERS ))
    $d rm -f $($d ps -aq) >/dev/null
  else
    echo "$name cannot run containers here: $(head -c 300 "$BENCH_DIR/$name-run.err")" >&2
    sleep 2
    idle=$(rss_kb "$dpid")
  fi

  for i in $(seq "$STOPPED"); do $d create --network none busybox true >/dev/null; done
  local ps_ms; ps_ms=$(python3 bench/api_time.py "$sock" "/v1.41/containers/json?all=1" 30)
  hyperfine -N --warmup 2 --runs 10 --export-json "$BENCH_DIR/$name-ps-cli.json" "$d ps -a" >/dev/null
  local ps_cli_ms; ps_cli_ms=$(python3 -c "import json,statistics;print(round(statistics.median(json.load(open('$BENCH_DIR/$name-ps-cli.json'))['results'][0]['times'])*1000,1))")
  $d rm -f $($d ps -aq) >/dev/null
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$run_ms" "$idle" "$per_rss" "$per_pss" "$ps_ms" "$ps_cli_ms" >> "$results"
}

# Berth
mkdir -p "$BENCH_DIR/berth"
"$BERTH" daemon -H "unix://$BENCH_DIR/berth/berth.sock" --data-root "$BENCH_DIR/berth/data" --exec-root "$BENCH_DIR/berth/run" --log-level warn 2>"$BENCH_DIR/berth/daemon.log" &
pids+=($!); bpid=$!
wait_sock "$BENCH_DIR/berth/berth.sock"
bench_engine berth "$BENCH_DIR/berth/berth.sock" "$bpid" "berth shim $BENCH_DIR/berth"

# Docker, when dockerd is installed (Debian's docker.io). It may set the FORWARD policy to DROP.
if command -v dockerd >/dev/null; then
  mkdir -p "$BENCH_DIR/docker"
  dockerd -H "unix://$BENCH_DIR/docker/docker.sock" --data-root "$BENCH_DIR/docker/data" \
    --exec-root "$BENCH_DIR/docker/run" --pidfile "$BENCH_DIR/docker/docker.pid" \
    --bridge none --iptables=false --ip6tables=false >"$BENCH_DIR/docker/daemon.log" 2>&1 &
  pids+=($!); dpid=$!
  if wait_sock "$BENCH_DIR/docker/docker.sock"; then
    bench_engine docker "$BENCH_DIR/docker/docker.sock" "$dpid" "containerd-shim-runc-v2"
  fi
fi

# Podman's Docker-compatible service.
if command -v podman >/dev/null; then
  mkdir -p "$BENCH_DIR/podman"
  podman --root "$BENCH_DIR/podman/root" --runroot "$BENCH_DIR/podman/run" system service -t 0 "unix://$BENCH_DIR/podman/podman.sock" >"$BENCH_DIR/podman/daemon.log" 2>&1 &
  pids+=($!); ppid_=$!
  if wait_sock "$BENCH_DIR/podman/podman.sock"; then
    bench_engine podman "$BENCH_DIR/podman/podman.sock" "$ppid_" "conmon.*$BENCH_DIR/podman" || echo "podman bench failed" >&2
  fi
fi

column -t -s $'\t' "$results"
echo "raw data: $BENCH_DIR"
