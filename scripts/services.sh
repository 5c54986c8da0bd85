#!/usr/bin/env bash
# Local test services on free 127.0.0.1 ports, from a project-local Python virtual environment
# (.venv-services, created when missing):
#   * moto      — a real HTTP SQS API          → ORDERD_TEST_SQS_ENDPOINT=http://127.0.0.1:PORT
#   * aiosmtpd  — SMTP into a Maildir           → ORDERD_TEST_SMTP=127.0.0.1:PORT, ORDERD_TEST_MAILDIR=DIR
#   * nx-27017  — MongoDB wire protocol on SQLite → ORDERD_TEST_NX27017_URI=mongodb://127.0.0.1:PORT/
#   * the venv's Python with `bcrypt` (the Node system's password hashes) and `selenium` (the
#     console's browser test, driving the system chromedriver) → ORDERD_TEST_PYTHON
#
#   scripts/services.sh start   # start all, wait until they answer, write .services/env
#   scripts/services.sh stop    # stop what `start` started
#
# The test command sources .services/env (KEY=VALUE lines) before running the tests.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv-services"
STATE="$ROOT/.services"
ENV_FILE="$STATE/env"
# bcrypt: an independent implementation that makes the Node system's password hashes in tests
# selenium: drives Debian's chromium through /usr/bin/chromedriver in the console's browser test
PACKAGES=('moto[server]==5.2.5' 'aiosmtpd==1.4.6' 'nx-27017==0.8.1' 'bcrypt==4.2.1' 'selenium==4.50.0')

ensure_venv() {
    if [[ -x "$VENV/bin/moto_server" && -x "$VENV/bin/nx-27017" ]] \
        && "$VENV/bin/python" -c 'import aiosmtpd, bcrypt, selenium' 2>/dev/null; then
        return
    fi
    echo "creating or completing $VENV (one time, about 20 s)"
    [[ -x "$VENV/bin/pip" ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until something accepts TCP connections on 127.0.0.1:$1 (or fails after ~20 s).
wait_for_port() {
    local port=$1 name=$2 pid=$3
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name exited; its log:" >&2
            cat "$STATE/$name.log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    echo "$name did not answer on port $port" >&2
    return 1
}

# Starts "$@" in the background, logging to $STATE/$name.log, pid in $STATE/$name.pid.
launch() {
    local name=$1
    shift
    "$@" >"$STATE/$name.log" 2>&1 &
    echo $! >"$STATE/$name.pid"
}

stop() {
    local pidfile pid
    for pidfile in "$STATE"/*.pid; do
        [[ -e "$pidfile" ]] || continue
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
    rm -f "$ENV_FILE"
}

start() {
    ensure_venv
    mkdir -p "$STATE"
    stop

    local sqs_port smtp_port mongo_port maildir
    sqs_port="$(free_port)"
    launch moto "$VENV/bin/moto_server" -H 127.0.0.1 -p "$sqs_port"

    maildir="$STATE/maildir"
    rm -rf "$maildir"
    mkdir -p "$maildir/tmp" "$maildir/new" "$maildir/cur"
    smtp_port="$(free_port)"
    # -n: do not switch to the nobody user (required when running as root).
    launch smtp "$VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$smtp_port" \
        -c aiosmtpd.handlers.Mailbox "$maildir"

    mongo_port="$(free_port)"
    mkdir -p "$STATE/nx-27017"
    # Its own PID file: the default (/tmp/nx_27017.pid) is shared by every checkout on the
    # machine, and the server refuses to start while another one's process is alive.
    launch nx27017 "$VENV/bin/nx-27017" --host 127.0.0.1 -p "$mongo_port" \
        --data-dir "$STATE/nx-27017" --log-file "$STATE/nx27017-server.log" \
        --pid-file "$STATE/nx-27017/server.pid"

    wait_for_port "$sqs_port" moto "$(cat "$STATE/moto.pid")"
    wait_for_port "$smtp_port" smtp "$(cat "$STATE/smtp.pid")"
    wait_for_port "$mongo_port" nx27017 "$(cat "$STATE/nx27017.pid")"

    cat >"$ENV_FILE" <<EOF
ORDERD_TEST_SQS_ENDPOINT=http://127.0.0.1:$sqs_port
ORDERD_TEST_SMTP=127.0.0.1:$smtp_port
ORDERD_TEST_MAILDIR=$maildir
ORDERD_TEST_NX27017_URI=mongodb://127.0.0.1:$mongo_port/
ORDERD_TEST_PYTHON=$VENV/bin/python
EOF
    echo "test services ready ($ENV_FILE):"
    sed 's/^/  /' "$ENV_FILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *)
        echo "usage: $0 start|stop" >&2
        exit 2
        ;;
esac
