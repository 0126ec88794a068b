#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (README.md, .ci/run):
# tools into target/venv, template lint, formatting, lints, then every test —
# unit, handler, HTTP, the storage conformance suite on both adapters (the AWS
# one against moto, which the tests start and stop themselves) and the token
# Lambda under `cargo lambda watch`.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
echo "== tools (target/venv: moto, cfn-lint, cargo-lambda)"
bash scripts/ensure-tools.sh
echo "== cfn-lint template.yaml"
target/venv/bin/cfn-lint template.yaml
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== all checks passed in $(( $(date +%s) - started )) s"
