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
source bench/lib.sh
build_berth

results=$BENCH_DIR/results.tsv
printf 'engine\trun_median_ms\tidle_rss_kb\tper_container_rss_kb\tper_container_pss_kb\tps_all_api_ms\tdocker_ps_a_ms\n' > "$results"

bench_engine() { # name socket daemon_pid [extra per-container pids command]
  local name=$1 sock=$2 dpid=$3 child_pattern=$4
  local d="$DOCKER_CLI -H unix://$sock"
  import_busybox "$d"
  local idle run_ms="n/a" per_rss="n/a" per_pss="n/a"
  if $d run --rm busybox true >/dev/null 2>"$BENCH_DIR/$name-run.err"; then   # also warms caches
    sleep 2
    idle=$(rss_kb "$dpid")
    hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$BENCH_DIR/$name-run.json" "$d run --rm busybox true" >/dev/null
    run_ms=$(hyperfine_median_ms "$BENCH_DIR/$name-run.json")

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
  local ps_cli_ms; ps_cli_ms=$(hyperfine_median_ms "$BENCH_DIR/$name-ps-cli.json")
  $d rm -f $($d ps -aq) >/dev/null
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$run_ms" "$idle" "$per_rss" "$per_pss" "$ps_ms" "$ps_cli_ms" >> "$results"
}

start_berth
bench_engine berth "$berth_sock" "$berth_pid" "berth shim $BENCH_DIR/berth"

if start_docker; then
  bench_engine docker "$docker_sock" "$docker_pid" "containerd-shim-runc-v2"
fi

# Podman's Docker-compatible service.
if start_podman; then
  bench_engine podman "$podman_sock" "$podman_pid" "conmon.*$BENCH_DIR/podman" || echo "podman bench failed" >&2
fi

column -t -s $'\t' "$results"
echo "raw data: $BENCH_DIR"
