#!/usr/bin/env bash
# Hostile input, time-bounded: starts orderd on a temporary data directory and a free port,
# makes an admin (`orderd admin create`) and a customer with one product and one order, and
# runs schemathesis against GET /openapi.json with the customer's, then the admin's bearer
# token, checking that no response is a server error and every response matches the
# documented schema. Exits non-zero when schemathesis finds a failure or orderd panics.
#
# Settings (environment):
#   SCHEMATHESIS_ORDERD     the orderd binary (default: target/release/orderd, else target/debug/orderd)
#   SCHEMATHESIS_EXAMPLES   examples per operation (default 20)
#   SCHEMATHESIS_TIMEOUT    wall-clock limit of each schemathesis run in seconds (default 80)
#   SCHEMATHESIS_AS         whose token to send: customer, admin, or both in turn (default customer,admin)
#   SCHEMATHESIS_SEED       seed for a reproducible run (default: random)
#   SCHEMATHESIS_REPORT     directory to keep the JUnit report and server log in (default: none)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-services
SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-20}
LIMIT=${SCHEMATHESIS_TIMEOUT:-80}
AS=${SCHEMATHESIS_AS:-customer,admin}

if [[ ! -x $VENV/bin/python ]]; then
    echo "==> creating $VENV"
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import schemathesis" 2>/dev/null; then
    echo "==> installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

BIN=${SCHEMATHESIS_ORDERD:-}
if [[ -z $BIN ]]; then
    for candidate in target/release/orderd target/debug/orderd; do
        if [[ -x $candidate ]]; then BIN=$candidate; break; fi
    done
fi
if [[ -z $BIN ]]; then
    echo "==> building orderd"
    cargo build -p orderd --quiet
    BIN=target/debug/orderd
fi

free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Only the settings below reach orderd (it refuses unknown ORDERD_* variables).
while read -r name; do unset "$name"; done < <(compgen -e | grep '^ORDERD_' || true)
WORK=$(mktemp -d -t orderd-schemathesis-XXXXXX)
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
export ORDERD_DATA_DIR=$WORK/data ORDERD_HTTP__PORT=$PORT ORDERD_RATE_LIMIT__ENABLED=false \
    ORDERD_HTTP__PLAIN_HTTP_COOKIES=true ORDERD_LOG__FILTER=warn \
    ORDERD_CONSUMER__HEALTH_ADDR=127.0.0.1:$(free_port)
unset RUST_LOG

ADMIN_EMAIL=schemathesis-admin@example.com
ADMIN_PASSWORD=schemathesis-admin-pw
"$BIN" admin create --email "$ADMIN_EMAIL" --password "$ADMIN_PASSWORD" --username st_admin >/dev/null

"$BIN" serve >"$WORK/orderd.log" 2>&1 &
SERVER=$!
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    if [[ -n ${SCHEMATHESIS_REPORT:-} ]]; then
        mkdir -p "$SCHEMATHESIS_REPORT"
        cp -r "$WORK/orderd.log" "$WORK/report/." "$SCHEMATHESIS_REPORT/" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

for _ in $(seq 1 300); do
    if curl -fsS "$BASE/api/health" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$SERVER" 2>/dev/null; then
        echo "orderd exited during start-up:" >&2
        cat "$WORK/orderd.log" >&2
        exit 1
    fi
    sleep 0.1
done

json_field() { "$VENV/bin/python" -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
login() {
    curl -fsS "$BASE/api/auth/login" -H 'content-type: application/json' \
        -d "{\"email\":\"$1\",\"password\":\"$2\"}" | json_field accessToken
}
CUSTOMER_EMAIL=fuzz@example.com
CUSTOMER_PASSWORD=fuzz-password-1
curl -fsS "$BASE/api/auth/register" -H 'content-type: application/json' \
    -d "{\"username\":\"fuzz_customer\",\"email\":\"$CUSTOMER_EMAIL\",\"password\":\"$CUSTOMER_PASSWORD\"}" >/dev/null
ADMIN_TOKEN=$(login "$ADMIN_EMAIL" "$ADMIN_PASSWORD")
CUSTOMER_TOKEN=$(login "$CUSTOMER_EMAIL" "$CUSTOMER_PASSWORD")

# One real product and order, so that routes taking an id reach past the 404.
export ST_PRODUCT_ID ST_ORDER_ID
ST_PRODUCT_ID=$(curl -fsS "$BASE/api/products" -H "authorization: Bearer $ADMIN_TOKEN" \
    -H 'content-type: application/json' \
    -d '{"name":"Fuzz tea","sku":"FUZZ-1","category":"essentials","price":1000,"currency":"INR","stock":1000000}' | json_field id)
ST_ORDER_ID=$(curl -fsS "$BASE/api/orders" -H "authorization: Bearer $CUSTOMER_TOKEN" \
    -H 'content-type: application/json' \
    -d "{\"items\":[{\"productId\":\"$ST_PRODUCT_ID\",\"quantity\":1}]}" | json_field id)

# Hooks: bodies for the application/wasm upload (schemathesis has no generator for it), and
# path ids and slots drawn half of the time (or more) from real ones.
cat >"$WORK/orderd_hooks.py" <<'PY'
import os

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.media_type(
    "application/wasm",
    st.one_of(
        st.binary(max_size=2048),
        st.just(b"\x00asm\x01\x00\x00\x00"),
        st.just(b"\x00asm\x0d\x00\x01\x00"),
    ),
)

KNOWN = {"/api/orders": os.environ.get("ST_ORDER_ID"), "/api/products": os.environ.get("ST_PRODUCT_ID")}


@schemathesis.hook
def flatmap_path_parameters(ctx, path_parameters):
    path = ctx.operation.path
    if path_parameters and "slot" in path_parameters:
        return st.sampled_from([path_parameters] + [{**path_parameters, "slot": s} for s in ("tax", "validation", "email")])
    for prefix, known in KNOWN.items():
        if known and path_parameters and "id" in path_parameters and path.startswith(prefix):
            return st.sampled_from([path_parameters, {**path_parameters, "id": known}])
    return st.just(path_parameters)
PY
export PYTHONPATH=$WORK SCHEMATHESIS_HOOKS=orderd_hooks

STATUS=0
for role in ${AS//,/ }; do
    if [[ $role == admin ]]; then TOKEN=$ADMIN_TOKEN; else TOKEN=$CUSTOMER_TOKEN; fi
    echo "==> schemathesis against $BASE/openapi.json as $role ($EXAMPLES examples per operation, at most ${LIMIT}s)"
    ARGS=(run "$BASE/openapi.json" --url "$BASE"
        --header "Authorization: Bearer $TOKEN"
        --checks not_a_server_error,response_schema_conformance
        --max-examples "$EXAMPLES"
        --phases examples,coverage,fuzzing
        --generation-database none
        --request-timeout 10
        --report junit --report-dir "$WORK/report/$role"
        --no-color
        # Ending every session of the token's user would turn the rest of the run into 401s.
        --exclude-path /api/auth/logout-all)
    if [[ -n ${SCHEMATHESIS_SEED:-} ]]; then ARGS+=(--seed "$SCHEMATHESIS_SEED"); fi
    set +e
    timeout --signal=INT --kill-after=10 "$LIMIT" "$VENV/bin/schemathesis" "${ARGS[@]}"
    RUN=$?
    set -e
    if [[ $RUN -eq 124 ]]; then echo "schemathesis did not finish within ${LIMIT}s" >&2; fi
    if [[ $RUN -ne 0 ]]; then STATUS=$RUN; fi
done
if grep -q "panicked" "$WORK/orderd.log"; then
    echo "orderd panicked during the run:" >&2
    grep -A5 "panicked" "$WORK/orderd.log" | head -40 >&2
    STATUS=1
fi
exit "$STATUS"
