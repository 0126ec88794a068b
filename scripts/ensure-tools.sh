#!/usr/bin/env bash
# Make sure target/venv holds the pinned Python-distributed tools
# (moto, cfn-lint, cargo-lambda + zig) from scripts/requirements-tools.txt.
#
# Idempotent and quiet when nothing changed: a stamp file records the sha256 of
# the requirements file (and the interpreter version) the venv was built from,
# so the fast path is one hash and one comparison. The venv lives under target/
# so that `cargo clean` or deleting target/ also removes it, and git ignores it.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/target/venv"
reqs="$repo_root/scripts/requirements-tools.txt"
stamp="$venv/.requirements-tools.sha256"
python="${PYTHON:-python3}"

want="$( { sha256sum "$reqs" | cut -d' ' -f1; "$python" -c 'import sys; print(sys.version_info[:2])'; } )"

if [[ -x "$venv/bin/python" && -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

echo "ensure-tools: installing pinned tools into $venv (first run takes a minute or two)" >&2
if [[ ! -x "$venv/bin/python" ]]; then
    mkdir -p "$repo_root/target"
    "$python" -m venv "$venv"
fi
rm -f "$stamp"   # a failed install below must not leave a stale stamp behind
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
printf '%s\n' "$want" > "$stamp"
echo "ensure-tools: done" >&2
