# shellcheck shell=bash
# Sourced by bench/vs-onnxruntime and bench/settings: builds attnprompt (cargo profile $PROFILE,
# default dist; `dev` also optimizes the dependencies, tract included) and makes a venv under
# target/bench-venv from bench/requirements.txt (idempotent). Sets BENCH_PYTHON and BENCH_BIN.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
profile="${PROFILE:-dist}"
cargo build --locked --profile "$profile"
bin_dir="$profile"
[ "$profile" = dev ] && bin_dir=debug
BENCH_BIN="$root/target/$bin_dir/attnprompt"
venv="$root/target/bench-venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum bench/requirements.txt | cut -d' ' -f1)"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
    echo "$want" >"$stamp"
fi
BENCH_PYTHON="$venv/bin/python"
