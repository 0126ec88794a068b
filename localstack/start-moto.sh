#!/usr/bin/env bash
# Start an AWS emulator (moto: DynamoDB + S3 + Secrets Manager) on 127.0.0.1
# for machines without Docker, create custdata's table, bucket and key secrets
# in it, and print the environment that points custdata's binaries at it.
#
#   localstack/start-moto.sh              # port 5000
#   MOTO_PORT=0 localstack/start-moto.sh  # any free port (printed)
#
# Runs in the foreground; Ctrl-C stops it. All state is in memory and is
# gone when it stops. The bootstrap (`cargo run -p custdata-admin -- aws
# bootstrap`) runs in the background once the emulator is up, because the
# first cargo build can take minutes; its result is printed when it ends.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${MOTO_PORT:-5000}"

"$repo_root/scripts/ensure-tools.sh"

tmp="$(mktemp -d)"
emu_pid=""
boot_pid=""

# shellcheck disable=SC2317  # invoked by the traps below
cleanup() {
    trap - EXIT INT TERM
    # Each background job below runs in its own process group (set -m), so
    # one kill reaches cargo and the compilers it started, too.
    if [[ -n "$boot_pid" ]]; then kill -TERM -- "-$boot_pid" 2>/dev/null || true; fi
    if [[ -n "$emu_pid" ]]; then
        kill -TERM "$emu_pid" 2>/dev/null || true
        wait "$emu_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
# Ctrl-C / SIGTERM: ask the emulator to stop; the wait loop below then ends
# with its exit status (0 on a clean stop).
trap 'kill -TERM "$emu_pid" 2>/dev/null || true' INT TERM

# The emulator prints exactly one line, `READY http://127.0.0.1:<port>`, on
# stdout once it accepts connections; read it through a FIFO so that the
# script knows the real port (MOTO_PORT=0) and when it is safe to bootstrap.
mkfifo "$tmp/stdout"
set -m # own process groups for background jobs: Ctrl-C reaches only this script
# stdin from /dev/null: a background job must never read the terminal.
"$repo_root/target/venv/bin/python" "$repo_root/localstack/moto_emulator.py" --port "$port" \
    </dev/null >"$tmp/stdout" &
emu_pid=$!
set +m
exec 3<"$tmp/stdout"
if ! read -r -t 60 -u 3 word url || [[ "$word" != READY ]]; then
    echo "start-moto: the emulator did not start on 127.0.0.1:$port (port in use? set MOTO_PORT)" >&2
    exit 1
fi

export AWS_ENDPOINT_URL="$url"
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1 # for the aws CLI and boto3
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export CUSTDATA_TABLE=custdata
export CUSTDATA_BUCKET=custdata
# The key secrets `aws bootstrap` creates, by name (a name serves as well as an ARN).
export CUSTDATA_HASH_KEY_SECRET_ARN=custdata-hash-key
export CUSTDATA_SIGNING_KEYS_SECRET_ARN=custdata-signing-keys

cat <<EOF
moto is listening on $url (Ctrl-C stops it; nothing is kept).
Point custdata's binaries (e.g. \`cargo lambda watch -A 127.0.0.1\`) at it with:

  export AWS_ENDPOINT_URL=$url
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=test
  export AWS_SECRET_ACCESS_KEY=test
  export CUSTDATA_TABLE=custdata
  export CUSTDATA_BUCKET=custdata
  export CUSTDATA_HASH_KEY_SECRET_ARN=custdata-hash-key
  export CUSTDATA_SIGNING_KEYS_SECRET_ARN=custdata-signing-keys

Creating the table, the bucket and the key secrets in the background...
EOF

set -m
(
    cd "$repo_root"
    if cargo run --quiet -p custdata-admin -- aws bootstrap --endpoint-url "$url" </dev/null; then
        echo "start-moto: table '$CUSTDATA_TABLE', bucket '$CUSTDATA_BUCKET' and the key secrets are ready."
    else
        echo "start-moto: bootstrap failed (exit $?); rerun it by hand:" >&2
        echo "  cargo run -p custdata-admin -- aws bootstrap --endpoint-url $url" >&2
    fi
) &
boot_pid=$!
set +m

# Wait for the emulator. A trapped signal interrupts `wait` while the emulator
# is still shutting down, so wait again until it is really gone; a zombie
# still answers kill -0, so its status is never lost.
status=0
while kill -0 "$emu_pid" 2>/dev/null; do
    if wait "$emu_pid"; then status=0; else status=$?; fi
done
emu_pid=""
exit "$status"
