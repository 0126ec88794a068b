#!/usr/bin/env bash
# Make sure the pinned Python-distributed tools are installed:
#   target/venv          <- scripts/requirements-tools.txt   (moto, cfn-lint,
#                           cargo-lambda + zig, schemathesis, optimove,
#                           check-jsonschema)
#   target/venv-checkov  <- scripts/requirements-checkov.txt (checkov, in a venv
#                           of its own: it pins boto3, networkx and packaging to
#                           versions older than the ones moto and cfn-lint run
#                           with in target/venv)
#   target/venv-sam      <- scripts/requirements-sam.txt (SAM CLI; only with
#                           --sam, for scripts/sam-build.sh)
#
# Idempotent and quiet when nothing changed: a stamp file in each venv records
# the sha256 of the requirements file (and the interpreter version) it was built
# from, so the fast path is one hash and one comparison per venv. The venvs live
# under target/ so that `cargo clean` or deleting target/ also removes them, and
# git ignores them.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"

# ensure_venv <venv dir> <requirements file>
ensure_venv() {
    local venv="$1" reqs="$2"
    local stamp="$venv/.requirements.sha256"
    local want
    want="$( { sha256sum "$reqs" | cut -d' ' -f1; "$python" -c 'import sys; print(sys.version_info[:2])'; } )"

    if [[ -x "$venv/bin/python" && -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi

    echo "ensure-tools: installing $(basename "$reqs") into $venv (first run takes a minute or two)" >&2
    if [[ ! -x "$venv/bin/python" ]]; then
        mkdir -p "$repo_root/target"
        "$python" -m venv "$venv"
    fi
    rm -f "$stamp"   # a failed install below must not leave a stale stamp behind
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
    printf '%s\n' "$want" > "$stamp"
    echo "ensure-tools: done" >&2
}

ensure_venv "$repo_root/target/venv" "$repo_root/scripts/requirements-tools.txt"
ensure_venv "$repo_root/target/venv-checkov" "$repo_root/scripts/requirements-checkov.txt"
if [[ "${1:-}" == "--sam" ]]; then
    ensure_venv "$repo_root/target/venv-sam" "$repo_root/scripts/requirements-sam.txt"
fi
