#!/usr/bin/env bash
# Builds the Python tax plugin (app.py) into a component with componentize-py, installing the
# pinned componentize-py from PyPI into the project's .venv-services when it is missing:
#
#   plugins/examples/python-tax/build.sh [OUT.wasm]   # default: target/python-plugins/python_tax.wasm
#
# The source is copied to a staging directory first, so the build writes nothing under
# plugins/ (host/build.rs rebuilds the host when anything there changes). Skips the build when
# the output is newer than app.py, the WIT files and this script.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
VENV="$ROOT/.venv-services"
VERSION=0.25.1
OUT="${1:-$ROOT/target/python-plugins/python_tax.wasm}"
STAGE="$(dirname "$OUT")/python-tax-src"

if [[ "$("$VENV/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $VERSION" ]]; then
    echo "installing componentize-py $VERSION from PyPI into $VENV (one time, about 15 s)"
    started=$SECONDS
    [[ -x "$VENV/bin/pip" ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$VERSION"
    echo "installed componentize-py $VERSION in $((SECONDS - started)) s"
fi

if [[ -f "$OUT" ]] && [[ -z "$(find "$HERE/app.py" "$HERE/build.sh" "$ROOT"/wit/*.wit -newer "$OUT" -print -quit)" ]]; then
    echo "python tax plugin is up to date: $OUT"
    exit 0
fi

rm -rf "$STAGE"
mkdir -p "$STAGE"
cp "$HERE/app.py" "$STAGE/"
started=$SECONDS
(cd "$STAGE" && "$VENV/bin/componentize-py" -d "$ROOT/wit" -w tax-rules componentize app -o "$OUT")
echo "built $OUT ($(stat -c %s "$OUT") bytes) in $((SECONDS - started)) s"
