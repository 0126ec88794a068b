#!/usr/bin/env bash
# `sam build` as a deployer runs it, then proof that what it built answers.
#
#   1. sam build for arm64 (template.yaml's default) into target/sam/arm64:
#      wall time, and the size of every function's artefact.
#   2. sam build for x86_64 (Architecture=x86_64) into target/sam/x86_64: the same
#      source and profile for the architecture this machine runs, because an arm64
#      executable does not run here.
#   3. bench-readiness runs that x86_64 artefact for every function under cargo
#      lambda's runtime API emulator, with DynamoDB, S3 and Secrets Manager on moto,
#      and prints each function's first answer, readiness and warm invocation.
#
# Not part of the test command: a cold run compiles the AWS SDK twice in release
# (once per architecture) and takes longer than the whole suite. Timings and
# sizes are in docs/performance.md ("Lambda artefacts").
#
# Usage: bash scripts/sam-build.sh [--arm64-only]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-tools.sh --sam
# cargo-lambda and zig (the cross linker) come from target/venv.
export PATH="$PWD/target/venv/bin:$PWD/target/venv-sam/bin:$PATH"
export SAM_CLI_TELEMETRY=0
# The rust-cargolambda builder looks for the artefact under <CodeUri>/target.
unset CARGO_TARGET_DIR

sam_build() { # <architecture>
    local started=$SECONDS
    # --beta-features: rust-cargolambda is still a beta build method of SAM CLI.
    sam build --beta-features --no-cached --build-dir "target/sam/$1" \
        --parameter-overrides "Architecture=$1" >"target/sam-build-$1.log" 2>&1 \
        || { tail -40 "target/sam-build-$1.log"; exit 1; }
    echo "sam build ($1): $((SECONDS - started)) s (log: target/sam-build-$1.log)"
}

mkdir -p target/sam
# cargo lambda would add the target itself, but SAM builds the three build definitions
# (the API functions, the importer, the sweep) at once and they race to install it.
rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
sam_build arm64
# SAM builds each build definition once: the API functions share one artefact
# (<first function>-Shared), the importer and the sweep have their own.
echo "artefacts (arm64, stripped):"
for artefact in target/sam/arm64/*/bootstrap; do
    printf '  %-28s %10d bytes\n' "$(basename "$(dirname "$artefact")")" "$(stat -c %s "$artefact")"
done
[[ "${1:-}" == "--arm64-only" ]] && exit 0

sam_build x86_64
# Every artefact is a copy of the one executable; each function runs it with its family.
cmp -s target/sam/x86_64/MxoTokenFunction-Shared/bootstrap target/sam/x86_64/AixonImportFunction/bootstrap \
    && echo "the artefacts are one executable"
started=$SECONDS
# The harness itself in the dev profile: it only starts processes and times them, and
# a release build of it would compile the SDK a third time.
cargo run --quiet -p custdata-bench --bin bench-readiness -- --sam-build-dir target/sam/x86_64
echo "readiness run: $((SECONDS - started)) s"
