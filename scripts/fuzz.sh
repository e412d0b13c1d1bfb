#!/usr/bin/env bash
# Runs antenne's fuzz targets (fuzz/, cargo-fuzz + libFuzzer). See docs/fuzzing.md.
#
#   bash scripts/fuzz.sh [--smoke | --seconds N] [--asan] [target...]
#
#   --smoke       5 s per target over the committed seeds (fuzz/seeds/<target>),
#                 new inputs go to a throwaway directory: the test suite's step.
#                 Builds unoptimised (cargo fuzz --dev): a third faster to build,
#                 slower to run, which suits a few seconds per target.
#   --seconds N   N s per target (default 300), growing fuzz/corpus/<target>
#                 (gitignored) from the seeds.
#   --asan        build with AddressSanitizer instead of no sanitizer (slower;
#                 the crates are safe Rust, so it adds little).
#   target...     some of: chunk_decoder handshake amf0 command server_session
#                 client_session player_session flv url flv_reader fmp4_init multitrack
#                 ts_demux ts_to_flv ts_mux (default: all).
#
# Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its
# nightly-only flags. Installs cargo-fuzz (cargo install cargo-fuzz --locked)
# when it is missing, and g++ (apt-get, as root) when there is no c++. A crash, hang (> 10 s per input) or OOM (> 2 GiB) stops
# that target with its input in fuzz/artifacts/<target>/; the script goes on
# with the other targets and exits 1 at the end.
set -euo pipefail

usage() {
    sed -n '2,/^set -e/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

mode=run
seconds=300
sanitizer=none
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke)
            mode=smoke
            seconds=5
            ;;
        --seconds)
            [ $# -ge 2 ] || {
                echo "scripts/fuzz.sh: --seconds needs a number" >&2
                exit 2
            }
            seconds=$2
            shift
            ;;
        --asan) sanitizer=address ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*)
            echo "scripts/fuzz.sh: unknown option: $1" >&2
            usage >&2
            exit 2
            ;;
        *) targets+=("$1") ;;
    esac
    shift
done
case "$seconds" in
    '' | *[!0-9]*)
        echo "scripts/fuzz.sh: --seconds wants a whole number, got $seconds" >&2
        exit 2
        ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
export RUSTC_BOOTSTRAP=1

command -v cargo >/dev/null 2>&1 || {
    echo "scripts/fuzz.sh: cargo not found (install a Rust toolchain)" >&2
    exit 1
}
# libfuzzer-sys builds libFuzzer, which is C++.
if ! command -v c++ >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing g++ (libFuzzer is C++)"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++
    else
        echo "scripts/fuzz.sh: no C++ compiler (c++); install g++" >&2
        exit 1
    fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

all=$(cargo fuzz list)
if [ "${#targets[@]}" -eq 0 ]; then
    # shellcheck disable=SC2206
    targets=($all)
fi
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$all" || {
        echo "scripts/fuzz.sh: no fuzz target $t (have: $(echo $all))" >&2
        exit 2
    }
done

start=$(date +%s)
flags=(-s "$sanitizer")
if [ "$mode" = smoke ]; then
    flags+=(--dev)
fi
echo "==> cargo fuzz build ${flags[*]} (all targets)"
cargo fuzz build "${flags[@]}"
echo "    built in $(($(date +%s) - start)) s"

failed=()
for t in "${targets[@]}"; do
    if [ "$mode" = smoke ]; then
        corpus=$(mktemp -d "${TMPDIR:-/tmp}/antenne-fuzz-$t.XXXXXX")
    else
        corpus=corpus/$t
        mkdir -p "$corpus"
    fi
    mkdir -p "seeds/$t" "artifacts/$t"
    echo "==> fuzz $t for $seconds s"
    log=$(mktemp "${TMPDIR:-/tmp}/antenne-fuzz-$t-log.XXXXXX")
    # libFuzzer runs in-process, one thread: -jobs/-workers are not used on
    # purpose (the machine is shared). Its report goes to stderr.
    if cargo fuzz run "${flags[@]}" "$t" "$corpus" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log" | sed 's/^/    /' || true
        grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" |
            sed 's/^/    /' || true
    else
        echo "!!! fuzz target $t failed; the end of its log:" >&2
        tail -40 "$log" >&2
        failed+=("$t")
    fi
    rm -f "$log"
    if [ "$mode" = smoke ]; then
        rm -rf "$corpus"
    fi
done

echo "==> fuzzing took $(($(date +%s) - start)) s in all"
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "scripts/fuzz.sh: failing targets: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
