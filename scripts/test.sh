#!/usr/bin/env bash
# The one test command: starts the local test services (SQS via moto, SMTP via aiosmtpd,
# MongoDB wire protocol via nx-27017) on free loopback ports from a project-local Python
# virtual environment (created when missing), runs every test of the plugins and the host
# against them, and stops the services again.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> plugin logic (native unit tests)"
(cd plugins && cargo test --workspace --quiet)

if [[ -x scripts/services.sh ]]; then
    echo "==> starting test services"
    scripts/services.sh start
    trap 'scripts/services.sh stop' EXIT
    set -a
    # shellcheck disable=SC1091
    source .services/env
    set +a
fi

echo "==> host tests"
cargo test --workspace "$@"
