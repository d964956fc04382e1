#!/usr/bin/env bash
# Issue 6's figures, `DOCKER_BUILDKIT=0 docker build` through the same docker CLI, Berth vs
# Docker's legacy builder, on a 10-step Dockerfile over busybox with a 50 MB incompressible file
# in the context (so the context upload, the COPY and the layer commit all cost something):
#   1. cold build: the image and the build cache removed before each run (rmi + builder prune)
#   2. fully cached rebuild
#   3. rebuild after changing one file that only a late step (COPY small/, step 7 of 10) reads
# Each is the median of --runs runs (hyperfine). Targets: Berth's time <= 1/2 of Docker's cold,
# <= 1/5 cached, <= 1/2 for the late step.
# Berth is measured twice: through the docker CLI (the whole context is sent every time, as
# the legacy API wants) and through its own CLI (`berth build`: only the paths the daemon's
# kept copy of the context lacks are sent).
# Usage: bench/build.sh [--runs N] [--mib N]      (BERTH=/path/to/berth reuses a built binary)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=10 MIB=50
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --mib) MIB=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
source bench/lib.sh
build_berth
export DOCKER_BUILDKIT=0

# The context: one context for both engines, so both upload the very same bytes.
ctx=$BENCH_DIR/ctx
mkdir -p "$ctx/small"
head -c "$((MIB * 1024 * 1024))" /dev/urandom > "$ctx/big.bin"
for f in a b c; do echo "small $f" > "$ctx/small/$f.txt"; done
echo initial > "$ctx/small/late.txt"
cat > "$ctx/Dockerfile" <<'EOF'
FROM busybox
ENV APP=/app MODE=bench
COPY big.bin /data/big.bin
RUN sha256sum /data/big.bin > /data/big.sum
RUN mkdir -p /app/etc && echo "$MODE" > /app/etc/mode && ls /data > /app/etc/data
WORKDIR /app
COPY small/ ./small/
RUN cat small/* > all.txt && wc -c all.txt
LABEL bench=build
CMD ["cat", "/app/all.txt"]
EOF

results=$BENCH_DIR/build-results.tsv
printf 'engine\tcold_ms\tcached_ms\tlate_step_ms\n' > "$results"

# hyperfine's --prepare commands go through files so they behave alike with and without -N.
bench_engine() { # name socket [build client]
  local name=$1 d="$DOCKER_CLI -H unix://$2"
  import_busybox "$d"
  local build="${3:-$d} build -t buildbench $ctx"
  local cold=$BENCH_DIR/$name-prep-cold.sh late=$BENCH_DIR/$name-prep-late.sh
  printf '%s rmi -f buildbench >/dev/null 2>&1 || true\n%s builder prune -af >/dev/null 2>&1 || true\n' "$d" "$d" > "$cold"
  # A new content every run: each run's late steps miss the cache, the early ones hit.
  printf 'date +%%s%%N > %s/small/late.txt\n' "$ctx" > "$late"
  echo "== $name: cold" >&2
  hyperfine -N --runs "$RUNS" --prepare "bash $cold" --export-json "$BENCH_DIR/$name-cold.json" "$build" >/dev/null
  echo "== $name: cached" >&2
  echo initial > "$ctx/small/late.txt"
  $build >/dev/null 2>&1
  hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$BENCH_DIR/$name-cached.json" "$build" >/dev/null
  echo "== $name: one late step" >&2
  hyperfine -N --warmup 1 --runs "$RUNS" --prepare "bash $late" --export-json "$BENCH_DIR/$name-late.json" "$build" >/dev/null
  # The image is right: the late file's last content is in it.
  $d run --rm --network none buildbench cat /app/small/late.txt | cmp -s - "$ctx/small/late.txt" ||
    { echo "$name: the built image lacks the last late.txt" >&2; exit 1; }
  echo initial > "$ctx/small/late.txt"
  printf '%s\t%s\t%s\t%s\n' "$name" "$(hyperfine_median_ms "$BENCH_DIR/$name-cold.json")" \
    "$(hyperfine_median_ms "$BENCH_DIR/$name-cached.json")" "$(hyperfine_median_ms "$BENCH_DIR/$name-late.json")" >> "$results"
}

start_berth && bench_engine berth "$berth_sock"
bench_engine berth-cli "$berth_sock" "$BERTH -H unix://$berth_sock"
if start_docker; then bench_engine docker "$docker_sock"; else echo "dockerd not installed: Berth only" >&2; fi
column -t "$results"
if grep -q '^docker' "$results"; then
  awk -F'\t' 'NR>1 {for (i=2; i<=4; i++) v[$1,i]=$i}
    END {
      split("berth berth-cli", es, " ")
      for (k = 1; k <= 2; k++) printf "%s/Docker: cold %.2f (target <= 0.50), cached %.2f (target <= 0.20), late step %.2f (target <= 0.50)\n",
        es[k], v[es[k],2]/v["docker",2], v[es[k],3]/v["docker",3], v[es[k],4]/v["docker",4]}' "$results"
fi
echo "raw data: $BENCH_DIR"
