#!/usr/bin/env bash
# Hunts flaky tests: runs the workspace's test binaries N times in a row and prints, per
# test that failed at least once, how many of the N rounds it failed in.
#
#   scripts/soak-tests.sh N [FILTER]
#
# FILTER (a grep -E pattern) picks test binaries by target name, e.g. 'server_api|shell';
# by default every integration test binary of the workspace runs (tests/*.rs and
# crates/*/tests/*.rs), plus the crates' unit tests. Each binary runs from its package's
# directory as `cargo test` runs it, with the same environment (TANSU_BIN etc.). Logs of
# failing runs are kept under $SOAK_LOGS (default: a new temp dir). Exits non-zero if any
# test failed in any round.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:?usage: scripts/soak-tests.sh N [FILTER]}
filter=${2:-.}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/eddy-target}"
logs=${SOAK_LOGS:-$(mktemp -d -t eddy-soak.XXXXXX)}
mkdir -p "$logs"

# One build, then the list of test executables with the directory each must run in.
manifest=$logs/binaries.tsv
cargo test --workspace --no-run --message-format=json 2>/dev/null \
  | python3 -c '
import json, os, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    if not m.get("profile", {}).get("test"):
        continue
    kind = m["target"]["kind"][0]
    name = m["target"]["name"] if kind == "test" else m["target"]["name"] + "(unit)"
    print(name, m["executable"], os.path.dirname(m["manifest_path"]), sep="\t")
' | sort -u >"$manifest"
if [[ ! -s $manifest ]]; then
  echo "soak: the build produced no test binaries (see: cargo test --workspace --no-run)" >&2
  exit 2
fi

declare -A failures=()
declare -A runs=()
started=$(date +%s)
for ((round = 1; round <= rounds; round++)); do
  while IFS=$'\t' read -r name exe dir; do
    [[ $name =~ $filter ]] || continue
    log=$logs/round$round-$name.log
    t0=$(date +%s)
    if (cd "$dir" && "$exe") >"$log" 2>&1; then
      status=ok
      rm -f "$log"
    else
      status=FAILED
      failed=$(sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$log")
      # A binary that failed without naming a test (a crash, a build problem) counts as one.
      [[ -n $failed ]] || failed="(binary-exited-non-zero)"
      while read -r test; do
        key="$name::$test"
        failures[$key]=$((${failures[$key]:-0} + 1))
      done <<<"$failed"
    fi
    runs[$name]=$((${runs[$name]:-0} + 1))
    printf 'round %d/%d  %-28s %-6s %4ds\n' "$round" "$rounds" "$name" "$status" $(($(date +%s) - t0))
  done <"$manifest"
done

echo
echo "soak: $rounds rounds in $(($(date +%s) - started)) s; logs of failed runs in $logs"
printf '%-70s %s\n' "test" "failed rounds"
if ((${#failures[@]} == 0)); then
  for name in $(printf '%s\n' "${!runs[@]}" | sort); do
    printf '%-70s %s\n' "$name (every test)" "0/${runs[$name]}"
  done
  exit 0
fi
for key in $(printf '%s\n' "${!failures[@]}" | sort); do
  printf '%-70s %s\n' "$key" "${failures[$key]}/$rounds"
done
exit 1
