#!/usr/bin/env bash
# The one test command: starts the local test services (SQS via moto, SMTP via aiosmtpd,
# MongoDB wire protocol via nx-27017) on free loopback ports from a project-local Python
# virtual environment (created when missing), builds the Python example plugin with
# componentize-py (installed into the same environment when missing), runs every test of the
# plugins and the host against them, runs schemathesis against a live orderd (time-bounded),
# stops the services and lists every test that could not run here, with the reason.
#
# Chromium and its driver (Debian packages) are installed when missing, for the operator
# console's browser test; Selenium comes with the services' virtual environment.
#
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p orderd --test api`); the
# schemathesis run is skipped when any are given. ORDERD_TEST_MONGODB_URI, when set to a real
# MongoDB replica set, makes the tests that need one run instead of reporting themselves skipped;
# ORDERD_TEST_FORBID_SKIP (a grep -E pattern, e.g. MongoDB) fails the run when a skip reason
# matches it. The GitHub workflow is checked first (scripts/lint-workflows.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# The plugin author's journey test (host/tests/plugin_author.rs) builds a generated plugin crate
# with cargo-component too. Installed once, at a pinned version; it compiles from source.
CARGO_COMPONENT_VERSION=0.21.1
if ! cargo component --version 2>/dev/null | grep -q "cargo-component-component $CARGO_COMPONENT_VERSION\|cargo-component $CARGO_COMPONENT_VERSION"; then
    echo "==> installing cargo-component $CARGO_COMPONENT_VERSION (one time; it compiles from source and takes several minutes)"
    cargo install --locked "cargo-component@$CARGO_COMPONENT_VERSION"
fi
# The operator console's browser test (host/tests/console_browser.rs) drives Debian's headless
# Chromium through its chromedriver; nothing downloads a browser. Installed once when missing.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    echo "==> installing chromium and chromium-driver from Debian (one time; the console's browser test uses them)"
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi
export ORDERD_TEST_CHROMIUM ORDERD_TEST_CHROMEDRIVER
ORDERD_TEST_CHROMIUM="$(command -v chromium)"
ORDERD_TEST_CHROMEDRIVER="$(command -v chromedriver)"
# cargo-component builds for wasm32-wasip1 and adapts the module to a component.
if ! rustup target list --installed | grep -qx wasm32-wasip1; then
    echo "==> adding the wasm32-wasip1 target (cargo-component builds for it)"
    rustup target add wasm32-wasip1
fi

echo "==> GitHub workflow (.github/workflows/ci.yml)"
scripts/lint-workflows.sh

echo "==> plugin logic (native unit tests)"
(cd plugins && cargo test --workspace --quiet)

echo "==> starting test services"
scripts/services.sh start
trap 'scripts/services.sh stop' EXIT
set -a
# shellcheck disable=SC1091
source .services/env
set +a
# The services above are here: a test that finds one missing fails instead of skipping.
export ORDERD_TEST_REQUIRE_SERVICES=1
export ORDERD_TEST_SKIP_LOG
ORDERD_TEST_SKIP_LOG="$(pwd)/.services/skipped.log"
: >"$ORDERD_TEST_SKIP_LOG"

echo "==> Python example plugin (componentize-py, plugins/examples/python-tax)"
plugins/examples/python-tax/build.sh
export ORDERD_TEST_PYTHON_TAX
ORDERD_TEST_PYTHON_TAX="$(pwd)/target/python-plugins/python_tax.wasm"

echo "==> host tests"
cargo test --workspace "$@"

if [[ $# -eq 0 ]]; then
    echo "==> hostile input: schemathesis against a live orderd (time-bounded)"
    SCHEMATHESIS_ORDERD=target/debug/orderd \
        SCHEMATHESIS_EXAMPLES=${SCHEMATHESIS_EXAMPLES:-10} \
        SCHEMATHESIS_TIMEOUT=${SCHEMATHESIS_TIMEOUT:-90} \
        scripts/schemathesis.sh
fi

if [[ -s $ORDERD_TEST_SKIP_LOG ]]; then
    echo "==> $(wc -l <"$ORDERD_TEST_SKIP_LOG") tests could not run on this machine:"
    sort "$ORDERD_TEST_SKIP_LOG"
fi
# Where a service is known to be there (CI's MongoDB job), a test skipping for want of it is a
# failure: ORDERD_TEST_FORBID_SKIP is a pattern (grep -E) over the skip reasons.
if [[ -n ${ORDERD_TEST_FORBID_SKIP:-} ]] && grep -qE -- "$ORDERD_TEST_FORBID_SKIP" "$ORDERD_TEST_SKIP_LOG"; then
    echo "==> FAILED: tests skipped although ORDERD_TEST_FORBID_SKIP=$ORDERD_TEST_FORBID_SKIP forbids it:"
    grep -E -- "$ORDERD_TEST_FORBID_SKIP" "$ORDERD_TEST_SKIP_LOG"
    exit 1
fi
