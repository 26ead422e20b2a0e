#!/usr/bin/env bash
# Runs hotswap's benchmarks and their Erlang/OTP reference on this machine, then prints each
# figure side by side with the ratio hotswap / Erlang. Installs Erlang from Debian's packages if
# `erl` is missing. Usage:
#   bench/run.sh                       # both, then the comparison
#   bench/run.sh --erlang-only         # just the Erlang side
#   bench/run.sh --rust-output FILE    # compare with a saved `cargo bench --bench runtime` output
# HOTSWAP_BENCH_SCALE=10 adds the 1M-process spawn on both sides.
set -euo pipefail
cd "$(dirname "$0")/.."

erlang_only=0
rust_output=""
while [ $# -gt 0 ]; do
  case "$1" in
    --erlang-only) erlang_only=1 ;;
    --rust-output) rust_output="$2"; shift ;;
    *) echo "unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
  shift
done

if ! command -v erl >/dev/null || ! command -v erlc >/dev/null; then
  echo "installing Erlang from Debian's packages (erlang-base)..." >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq erlang-base >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
erlc -o "$work" bench/erlang/hotswap_bench.erl
echo "== Erlang/OTP" >&2
(cd "$work" && erl +P 2000000 -noshell -pa "$work" -eval 'hotswap_bench:main(), halt().') | tee "$work/erlang.txt"
[ "$erlang_only" -eq 1 ] && exit 0

if [ -z "$rust_output" ]; then
  echo "== hotswap (cargo bench --bench runtime)" >&2
  rust_output="$work/rust.txt"
  cargo bench --bench runtime | tee "$rust_output"
fi

python3 - "$work/erlang.txt" "$rust_output" <<'PY'
import sys
def results(path):
    out = {}
    for line in open(path):
        parts = line.split()
        if len(parts) == 3 and parts[0] == "RESULT":
            out[parts[1]] = float(parts[2])
    return out
erl, rust = results(sys.argv[1]), results(sys.argv[2])
print()
print(f"{'figure':44} {'Erlang':>14} {'hotswap':>14} {'hotswap/Erlang':>15}  better")
# hotswap variants of a figure compare with Erlang's one figure.
variants = {"_no_warm": "", "_after_message": "", "_floor": "",
            "spawn_distinct_args_": "spawn_", "spawn_concurrent_": "spawn_",
            "pingpong_postcard_": "pingpong_", "fanin_many_": "fanin_"}
def erlang_key(key):
    for variant, base in variants.items():
        key = key.replace(variant, base)
    return key
for key in sorted(k for k in rust if erlang_key(k) in erl):
    higher = "_per_s" in key
    e, r = erl[erlang_key(key)], rust[key]
    ratio = f"{r / e:.2f}" if e else "-"
    print(f"{key:44} {e:>14.3f} {r:>14.3f} {ratio:>15}  {'higher' if higher else 'lower'}")
PY
