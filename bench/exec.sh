#!/usr/bin/env bash
# Issue 3's figures, Berth vs Docker through the same docker CLI:
#   1. `docker exec C true` into a running container: median of 30 (hyperfine)
#   2. CPU while 20 idle containers run a healthcheck every second, sampled over 30 s:
#      the daemon alone (target: <= 1% of one core), and the whole engine (daemon, shims and
#      probes for Berth; dockerd, containerd, shims and runc for Docker)
# Usage: bench/exec.sh [--runs N] [--containers N] [--seconds N]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=30 CONTAINERS=20 SECONDS_=30
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --containers) CONTAINERS=$2; shift 2;;
    --seconds) SECONDS_=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
source bench/lib.sh
build_berth
HZ=$(getconf CLK_TCK)

results=$BENCH_DIR/exec-results.tsv
printf 'engine\texec_true_median_ms\tdaemon_cpu_pct\tengine_cpu_pct\thealthy\n' > "$results"

# Sum of CPU ticks of the processes matching a pattern (children reaped by them included).
ticks_of() { local t=0; for p in $(pgrep -f "$1" || true); do t=$((t + $(cpu_ticks "$p" all))); done; echo "$t"; }

bench_engine() { # name socket daemon_pid engine-process-pattern
  local name=$1 sock=$2 dpid=$3 pattern=$4
  local d="$DOCKER_CLI -H unix://$sock"
  import_busybox "$d"
  $d run -d --name ex --network none busybox sleep 3600 >/dev/null
  $d exec ex true
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$BENCH_DIR/$name-exec.json" "$d exec ex true" >/dev/null
  local exec_ms; exec_ms=$(hyperfine_median_ms "$BENCH_DIR/$name-exec.json")
  $d rm -f ex >/dev/null

  for i in $(seq "$CONTAINERS"); do
    $d run -d --network none --name "h$i" --health-cmd true --health-interval 1s busybox sleep 3600 >/dev/null
  done
  sleep 5
  local d0 e0 d1 e1
  d0=$(cpu_ticks "$dpid"); e0=$(ticks_of "$pattern")
  sleep "$SECONDS_"
  d1=$(cpu_ticks "$dpid"); e1=$(ticks_of "$pattern")
  local healthy; healthy=$($d ps --filter health=healthy -q | wc -l)
  $d rm -f $($d ps -aq) >/dev/null
  local dpct epct
  dpct=$(python3 -c "print(round(100*($d1-$d0)/$HZ/$SECONDS_, 2))")
  epct=$(python3 -c "print(round(100*($e1-$e0)/$HZ/$SECONDS_, 2))")
  printf '%s\t%s\t%s\t%s\t%s/%s\n' "$name" "$exec_ms" "$dpct" "$epct" "$healthy" "$CONTAINERS" >> "$results"
}

start_berth
bench_engine berth "$berth_sock" "$berth_pid" "$BENCH_DIR/berth"

if start_docker; then
  bench_engine docker "$docker_sock" "$docker_pid" "dockerd -H unix://$BENCH_DIR/docker|containerd"
fi

column -t -s $'\t' "$results"
echo "raw data: $BENCH_DIR"
