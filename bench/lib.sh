# Shared by the bench scripts: private sockets and data roots under $BENCH_DIR for Berth,
# Docker (Debian's docker.io) and Podman, all stopped by PID on exit.
DOCKER_CLI=${DOCKER_CLI:-/usr/local/bin/docker}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/berth-bench.XXXXXX)}
export DOCKER_CONFIG=$BENCH_DIR/docker-config DOCKER_CLI_HINTS=false
mkdir -p "$DOCKER_CONFIG"
command -v hyperfine >/dev/null || { echo "hyperfine missing: run scripts/setup.sh" >&2; exit 1; }

pids=()
cleanup() {
  # Registries are (re)started by hyperfine's --prepare scripts: their pids live in files.
  for f in "$BENCH_DIR"/*.pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  grep -o "$BENCH_DIR[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
wait_sock() { for _ in $(seq 200); do curl -sf --unix-socket "$1" http://x/_ping >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
# CPU ticks (utime+stime, plus reaped children's with "all") of one process.
cpu_ticks() { awk -v all="${2:-}" '{t=$14+$15; if (all=="all") t+=$16+$17; print t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hyperfine_median_ms() { python3 -c "import json,statistics;print(round(statistics.median(json.load(open('$1'))['results'][0]['times'])*1000,1))"; }

# BERTH=/path/to/berth skips the release build (to measure a binary already built).
build_berth() {
  if [ -z "${BERTH:-}" ]; then
    cargo build --release -q -p berth
    BERTH=${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-gnu/release/berth
  fi
  [ -f "$BENCH_DIR/busybox.tar" ] || bash scripts/busybox-image.sh "$BENCH_DIR/busybox.tar"
}

# Each start_* sets <engine>_sock and <engine>_pid, or returns 1 when the engine is missing.
start_berth() {
  mkdir -p "$BENCH_DIR/berth"
  "$BERTH" daemon -H "unix://$BENCH_DIR/berth/berth.sock" --data-root "$BENCH_DIR/berth/data" \
    --exec-root "$BENCH_DIR/berth/run" --log-level warn 2>"$BENCH_DIR/berth/daemon.log" &
  pids+=($!); berth_pid=$!; berth_sock=$BENCH_DIR/berth/berth.sock
  wait_sock "$berth_sock"
}

# dockerd may set the iptables FORWARD policy to DROP; it runs without a bridge or iptables here.
start_docker() {
  command -v dockerd >/dev/null || return 1
  mkdir -p "$BENCH_DIR/docker"
  dockerd -H "unix://$BENCH_DIR/docker/docker.sock" --data-root "$BENCH_DIR/docker/data" \
    --exec-root "$BENCH_DIR/docker/run" --pidfile "$BENCH_DIR/docker/docker.pid" \
    --bridge none --iptables=false --ip6tables=false >"$BENCH_DIR/docker/daemon.log" 2>&1 &
  pids+=($!); docker_pid=$!; docker_sock=$BENCH_DIR/docker/docker.sock
  wait_sock "$docker_sock"
}

start_podman() {
  command -v podman >/dev/null || return 1
  mkdir -p "$BENCH_DIR/podman"
  podman --root "$BENCH_DIR/podman/root" --runroot "$BENCH_DIR/podman/run" system service -t 0 \
    "unix://$BENCH_DIR/podman/podman.sock" >"$BENCH_DIR/podman/daemon.log" 2>&1 &
  pids+=($!); podman_pid=$!; podman_sock=$BENCH_DIR/podman/podman.sock
  wait_sock "$podman_sock"
}

import_busybox() { # docker-cli-prefix
  $1 rmi -f busybox:latest >/dev/null 2>&1 || true
  $1 import "$BENCH_DIR/busybox.tar" busybox:latest >/dev/null
}

# registry_script KIND PORT: writes (and prints the path of) a script that (re)starts a registry
# on 127.0.0.1:PORT with EMPTY storage, detached, its pid in $BENCH_DIR/registry-PORT.pid:
# Debian's docker-registry (KIND=distribution) or `berth registry serve` (KIND=berth). It is a
# file so that hyperfine's --prepare can run it before every run.
registry_script() {
  local kind=$1 port=$2 dir=$BENCH_DIR/registry-$2 start
  local script=$BENCH_DIR/registry-$2.sh pidf=$BENCH_DIR/registry-$2.pid
  case $kind in
    distribution)
      printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
        "$dir/data" "$port" > "$dir.yml"
      start="docker-registry serve $dir.yml";;
    berth) start="$BERTH registry serve --addr 127.0.0.1:$port --root $dir/data";;
    *) echo "unknown registry kind $kind" >&2; return 1;;
  esac
  cat > "$script" <<EOF
if [ -f $pidf ]; then
  pid=\$(cat $pidf); kill \$pid 2>/dev/null
  for _ in \$(seq 100); do kill -0 \$pid 2>/dev/null || break; sleep 0.05; done
  rm -f $pidf
fi
rm -rf $dir/data && mkdir -p $dir/data
setsid $start </dev/null >>$dir.log 2>&1 &
echo \$! > $pidf
for _ in \$(seq 200); do
  case \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/v2/) in 200|401) exit 0;; esac
  kill -0 \$(cat $pidf) 2>/dev/null || { echo "registry on $port died: see $dir.log" >&2; exit 1; }
  sleep 0.05
done
echo "registry on $port does not answer: see $dir.log" >&2; exit 1
EOF
  echo "$script"
}
