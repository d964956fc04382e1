#!/usr/bin/env bash
# Issue 7's figures: push and pull of a ~200 MB image (busybox + one 150 MB incompressible
# layer from /dev/urandom + one 50 MB layer of compressible text) through a local registry,
# for Docker (Debian's dockerd), Podman (its docker-compatible service) and Berth, all driven by
# the same docker CLI; Berth also through its own CLI. MB/s = image size / median time.
#   push: every run into a registry restarted with EMPTY storage (hyperfine --prepare), so that
#         every layer is uploaded (a fresh registry also defeats Docker's cross-repo mounts);
#   pull: every run after removing every image of the engine (so the layers go too).
# Table 1: through Debian's docker-registry (distribution 2.8), ratios to Podman; targets:
# Berth >= 1.5x Podman. Table 2: the same client through Berth's registry server
# (`berth registry serve`) and through docker-registry; target: Berth's >= docker-registry's.
# An engine or registry that fails is marked in the tables, not fatal.
# Usage: bench/registry.sh [--runs N] [--random-mib N] [--text-mib N] [--port P]
#        (BERTH=/path/to/berth reuses a built binary; the registries use ports P and P+1)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=5 RANDOM_MIB=150 TEXT_MIB=50 PORT=5170
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2;;
    --random-mib) RANDOM_MIB=$2; shift 2;;
    --text-mib) TEXT_MIB=$2; shift 2;;
    --port) PORT=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
source bench/lib.sh
build_berth
command -v docker-registry >/dev/null || { echo "docker-registry missing: run scripts/setup.sh" >&2; exit 1; }
export DOCKER_BUILDKIT=0
DIST_PORT=$PORT BERTH_REG_PORT=$((PORT + 1))
# Podman wants to be told that these registries speak plain HTTP; Docker and Berth treat
# 127.0.0.0/8 as insecure already.
export CONTAINERS_REGISTRIES_CONF=$BENCH_DIR/registries.conf
printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n\n[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' \
  "$DIST_PORT" "$BERTH_REG_PORT" > "$CONTAINERS_REGISTRIES_CONF"

# The image's content: one context for every engine.
ctx=$BENCH_DIR/ctx
mkdir -p "$ctx"
head -c "$((RANDOM_MIB * 1024 * 1024))" /dev/urandom > "$ctx/random.bin"
python3 - "$ctx/text.txt" "$((TEXT_MIB * 1024 * 1024))" <<'EOF'
import random, sys
rng = random.Random(7)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10))) for _ in range(2000)]
out, size, n = open(sys.argv[1], "w"), int(sys.argv[2]), 0
while n < size:
    line = f"{n:010d} " + " ".join(rng.choice(words) for _ in range(12)) + "\n"
    out.write(line)
    n += len(line)
EOF
printf 'FROM busybox\nCOPY random.bin /data/random.bin\nCOPY text.txt /data/text.txt\n' > "$ctx/Dockerfile"
size_bytes=$(( $(stat -c %s "$ctx/random.bin") + $(stat -c %s "$ctx/text.txt") + $(stat -c %s "$BENCH_DIR/busybox.tar") ))
size_mb=$(awk -v b="$size_bytes" 'BEGIN{printf "%.1f", b/1e6}')

results=$BENCH_DIR/registry-results.tsv
printf 'client\tregistry\tpush_s\tpull_s\n' > "$results"
median_s() { awk -v ms="$(hyperfine_median_ms "$1")" 'BEGIN{printf "%.2f", ms/1000}'; }
first_line() { head -c 300 "$1" | tr '\n' ' ' | sed 's/|/\//g; s/ *$//'; }

# measure NAME DOCKER-CLI-PREFIX [CLIENT-PREFIX] REGISTRY-KIND PORT: builds the image on the
# engine, then times push (fresh registry) and pull (engine emptied) with CLIENT (default: the
# docker CLI). A row with the failure's first line when a step fails.
measure() {
  local name=$1 d=$2 client=${3:-$2} kind=$4 port=$5
  local ref=127.0.0.1:$port/bench/registry:latest reg
  local tag=$BENCH_DIR/$name-$kind
  echo "== $name via $kind" >&2
  reg=$(registry_script "$kind" "$port")
  if ! bash "$reg" 2>"$tag.err"; then
    printf '%s\t%s\tregistry failed: %s\t-\n' "$name" "$kind" "$(first_line "$tag.err")" >> "$results"; return 0
  fi
  if ! { $d rmi -f $($d images -aq) >/dev/null 2>&1; import_busybox "$d" && $d build -q -t "$ref" "$ctx" >/dev/null; } 2>"$tag.err"; then
    printf '%s\t%s\tbuild failed: %s\t-\n' "$name" "$kind" "$(first_line "$tag.err")" >> "$results"; return 0
  fi
  # One untimed push and pull first: an engine that cannot is marked, not fatal.
  if ! $client push "$ref" >"$tag.out" 2>"$tag.err"; then
    printf '%s\t%s\tpush failed: %s\t-\n' "$name" "$kind" "$(first_line "$tag.err")" >> "$results"; return 0
  fi
  local wipe=$tag-wipe.sh
  printf '%s rmi -f $(%s images -aq) >/dev/null 2>&1 || true\n' "$d" "$d" > "$wipe"
  if ! { bash "$wipe"; $client pull "$ref" >"$tag.out"; } 2>"$tag.err"; then
    printf '%s\t%s\tpush ok, pull failed: %s\t-\n' "$name" "$kind" "$(first_line "$tag.err")" >> "$results"; return 0
  fi
  local push=- pull=-
  hyperfine -N --runs "$RUNS" --prepare "bash $reg" --export-json "$tag-push.json" "$client push $ref" >/dev/null 2>"$tag.err" &&
    push=$(median_s "$tag-push.json") || push="failed: $(first_line "$tag.err")"
  # Each push really uploaded: the registry holds at least the random layer.
  local stored
  stored=$(du -sm "$BENCH_DIR/registry-$port/data" | cut -f1)
  [ "$stored" -ge "$RANDOM_MIB" ] || push="suspect: the registry holds only ${stored} MiB"
  hyperfine -N --runs "$RUNS" --prepare "bash $wipe" --export-json "$tag-pull.json" "$client pull $ref" >/dev/null 2>"$tag.err" &&
    pull=$(median_s "$tag-pull.json") || pull="failed: $(first_line "$tag.err")"
  $d image inspect "$ref" >/dev/null 2>&1 || pull="suspect: no image after the pull"
  printf '%s\t%s\t%s\t%s\n' "$name" "$kind" "$push" "$pull" >> "$results"
}

engines=()
if start_berth; then
  engines+=(berth)
  measure berth "$DOCKER_CLI -H unix://$berth_sock" "" distribution "$DIST_PORT"
  measure berth-cli "$DOCKER_CLI -H unix://$berth_sock" "$BERTH -H unix://$berth_sock" distribution "$DIST_PORT"
  measure berth "$DOCKER_CLI -H unix://$berth_sock" "" berth "$BERTH_REG_PORT"
else echo "berth daemon did not start: see $BENCH_DIR/berth/daemon.log" >&2; fi
if start_docker; then
  engines+=(docker)
  measure docker "$DOCKER_CLI -H unix://$docker_sock" "" distribution "$DIST_PORT"
  # The registry comparison with a client that works today, for reference.
  measure docker "$DOCKER_CLI -H unix://$docker_sock" "" berth "$BERTH_REG_PORT"
else echo "dockerd not installed: no Docker figures" >&2; fi
if start_podman; then
  engines+=(podman)
  measure podman "$DOCKER_CLI -H unix://$podman_sock" "" distribution "$DIST_PORT"
else echo "podman not installed: no Podman figures" >&2; fi

echo
echo "Image: ${size_mb} MB (busybox + ${RANDOM_MIB} MiB random + ${TEXT_MIB} MiB text); median of $RUNS runs; MB/s = image size / median time."
echo
echo "### Through docker-registry (distribution 2.8)"
echo
awk -F'\t' -v mb="$size_mb" '
  function num(s) { return s ~ /^[0-9.]+$/ }
  function rate(s) { return num(s) ? sprintf("%.1f", mb / s) : "-" }
  NR > 1 && $2 == "distribution" { n++; name[n] = $1; push[n] = $3; pull[n] = $4; if ($1 == "podman") { pp = $3; pl = $4 } }
  END {
    print "| engine | push s | push MB/s | push vs Podman | pull s | pull MB/s | pull vs Podman |"
    print "|---|---|---|---|---|---|---|"
    for (i = 1; i <= n; i++) {
      rp = (num(push[i]) && num(pp)) ? sprintf("%.2fx", pp / push[i]) : "-"
      rl = (num(pull[i]) && num(pl)) ? sprintf("%.2fx", pl / pull[i]) : "-"
      printf "| %s | %s | %s | %s | %s | %s | %s |\n", name[i], push[i], rate(push[i]), rp, pull[i], rate(pull[i]), rl
    }
  }' "$results"
echo
echo "### Same client, Berth's registry server vs docker-registry"
echo
awk -F'\t' -v mb="$size_mb" '
  function num(s) { return s ~ /^[0-9.]+$/ }
  function rate(s) { return num(s) ? sprintf("%.1f", mb / s) : "-" }
  NR > 1 && ($1 == "berth" || $1 == "docker") { k = $1 SUBSEP $2; push[k] = $3; pull[k] = $4; seen[$1] = 1 }
  END {
    print "| client daemon | registry | push s | push MB/s | pull s | pull MB/s |"
    print "|---|---|---|---|---|---|"
    split("berth docker", cs, " ")
    for (c = 1; c <= 2; c++) {
      if (!seen[cs[c]]) continue
      split("distribution berth", rs, " ")
      for (r = 1; r <= 2; r++) {
        k = cs[c] SUBSEP rs[r]
        if (!(k in push)) continue
        label = rs[r] == "berth" ? "berth registry serve" : "docker-registry"
        printf "| %s | %s | %s | %s | %s | %s |\n", cs[c], label, push[k], rate(push[k]), pull[k], rate(pull[k])
      }
      b = cs[c] SUBSEP "berth"; d = cs[c] SUBSEP "distribution"
      if (num(push[b]) && num(push[d]) && num(pull[b]) && num(pull[d]))
        printf "| %s | berth/docker-registry throughput | | %.2fx | | %.2fx |\n", cs[c], push[d] / push[b], pull[d] / pull[b]
    }
  }' "$results"
echo
echo "raw data: $BENCH_DIR"
