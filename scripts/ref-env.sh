# shellcheck shell=bash
# Shared by scripts/make-models and scripts/make-fixtures (source it, then call ref_env).
# Creates or reuses the Python reference venv at target/ref-venv and installs the
# pinned scripts/requirements-ref.txt into it, only when the pins changed.
# Sets: REPO_ROOT, REF_VENV, REF_PY.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REF_VENV="${REF_VENV:-$REPO_ROOT/target/ref-venv}"
REF_PY="$REF_VENV/bin/python"

ref_env() {
    local req="$REPO_ROOT/scripts/requirements-ref.txt"
    local stamp="$REF_VENV/.requirements-ref.sha256"
    local want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [ ! -x "$REF_PY" ]; then
        local py="${PYTHON:-python3}"
        echo "ref-env: creating venv $REF_VENV with $($py --version 2>&1)" >&2
        "$py" -m venv "$REF_VENV"
    fi
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    echo "ref-env: installing pinned $req" >&2
    "$REF_PY" -m pip install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
}
