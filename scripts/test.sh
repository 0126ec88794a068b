#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (README.md, .ci/run):
# tools into target/venv and target/venv-checkov, template lint and policy
# scan, workflow lint, formatting, lints, then every test —
# unit, handler, HTTP, the storage conformance suite on both adapters (the AWS
# one against moto, which the tests start and stop themselves) and the token
# Lambda under `cargo lambda watch`.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
echo "== tools (target/venv: moto, cfn-lint, cargo-lambda; target/venv-checkov: checkov)"
bash scripts/ensure-tools.sh
echo "== cfn-lint template.yaml"
target/venv/bin/cfn-lint template.yaml
echo "== checkov template.yaml (skips are in the template, each with its reason)"
# --framework cloudformation reads the SAM resources too; --skip-download keeps
# it off the network. It exits non-zero on a failed check, but 0 on a template
# it cannot parse, hence the second test.
checkov_out="$(target/venv-checkov/bin/checkov --file template.yaml --framework cloudformation \
    --compact --quiet --skip-download)" || { echo "$checkov_out"; exit 1; }
echo "$checkov_out"
if grep -q "Parsing errors" <<<"$checkov_out"; then
    echo "checkov could not parse template.yaml" >&2
    exit 1
fi
echo "== workflow schema .github/workflows/*.yml"
target/venv/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The Lambda binary alone, as sam build compiles it: without the features the workspace
# build turns on in custdata (embedded, template, test-kit), which --workspace always has.
cargo clippy --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== all checks passed in $(( $(date +%s) - started )) s"
