#!/usr/bin/env bash
# Volumes, Berth vs Docker (Debian's docker.io), both on this machine's disk:
#   1. write 1 GiB with dd (fsync'd) into a named volume, into the container's rw layer, and on
#      the host directly (same filesystem as the data roots), median MB/s of --writes runs
#   2. `docker run --rm busybox true` with 5 named volumes mounted vs none, median of --runs
# Usage: bench/volume.sh [--runs N] [--mib N] [--writes N]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=30 MIB=1024 WRITES=5
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --mib) MIB=$2; shift 2;;
    --writes) WRITES=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
source bench/lib.sh
build_berth

results=$BENCH_DIR/results.tsv
printf 'engine\tvolume_MB_s\trw_layer_MB_s\thost_MB_s\tvolume/host\trun_none_ms\trun_5vol_ms\n' > "$results"

# One fsync'd write of $MIB MiB to the file $1, timed where it runs (so `docker exec`'s own
# cost is not counted) by /proc/uptime; prints MB/s. Run by busybox sh on the host and in the
# containers alike, so every figure uses the same writer.
WRITE='a=$(cut -d" " -f1 /proc/uptime); dd if=/dev/zero of="$1" bs=1M count='$MIB' conv=fsync 2>/dev/null; b=$(cut -d" " -f1 /proc/uptime); rm -f "$1"; awk -v a=$a -v b=$b "BEGIN{printf \"%.0f\n\", '$MIB'*1.048576/(b-a)}"'
median() { sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }

bench_engine() { # name socket
  local name=$1 d="$DOCKER_CLI -H unix://$2"
  import_busybox "$d"
  $d volume create benchvol >/dev/null
  $d run -d --name writer -v benchvol:/vol busybox sleep 36000 >/dev/null
  mkdir -p "$BENCH_DIR/hostdir"
  # Rounds interleave the three targets, so the disk's drift over time hits them alike.
  local raw=$BENCH_DIR/$name-writes.tsv
  : > "$raw"
  for _ in $(seq "$WRITES"); do
    printf '%s\t%s\t%s\n' \
      "$($d exec writer sh -c "$WRITE" sh /vol/f)" \
      "$($d exec writer sh -c "$WRITE" sh /rw-f)" \
      "$(busybox sh -c "$WRITE" sh "$BENCH_DIR/hostdir/f")" >> "$raw"
  done
  local vol rw host
  vol=$(cut -f1 "$raw" | median); rw=$(cut -f2 "$raw" | median); host=$(cut -f3 "$raw" | median)
  $d rm -f writer >/dev/null

  local vols=""
  for i in 1 2 3 4 5; do $d volume create "v$i" >/dev/null; vols="$vols -v v$i:/v$i"; done
  $d run --rm $vols busybox true >/dev/null
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$BENCH_DIR/$name-none.json" "$d run --rm busybox true" >/dev/null
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$BENCH_DIR/$name-5vol.json" "$d run --rm$vols busybox true" >/dev/null
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$vol" "$rw" "$host" "$(awk -v v="$vol" -v h="$host" 'BEGIN{printf "%.2f", v/h}')" \
    "$(hyperfine_median_ms "$BENCH_DIR/$name-none.json")" "$(hyperfine_median_ms "$BENCH_DIR/$name-5vol.json")" >> "$results"
}

start_berth && bench_engine berth "$berth_sock"
if start_docker; then bench_engine docker "$docker_sock"; else echo "dockerd not installed: Berth only" >&2; fi
column -t "$results"
echo "raw data: $BENCH_DIR"
