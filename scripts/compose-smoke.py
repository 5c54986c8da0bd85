#!/usr/bin/env python3
"""Smoke client for the docker-compose stack: drives it as a customer would and checks that
the order travelled the whole way. Needs Docker and Python 3 (standard library only).

    export ORDERD_JWT_SECRET=$(openssl rand -hex 32)   # the same value for both commands
    docker compose up --build --wait
    scripts/compose-smoke.py

Steps, each failing the run with what it saw:
  1. an admin (made with `orderd admin create` in the orderd container) adds a product;
  2. a customer registers and logs in;
  3. orderd is restarted with the api and relay roles only, the customer orders, and the
     order's message is seen waiting in LocalStack's SQS queue (peeked without receiving it);
  4. orderd comes back with all roles, its consumer takes the message and the order becomes
     `processed`;
  5. the confirmation e-mail to the customer is in Mailpit's API.
Every run uses fresh names, so it can run again on the same stack.
"""

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

API = os.environ.get("ORDERD_SMOKE_API", "http://127.0.0.1:8000")
MAILPIT = os.environ.get("ORDERD_SMOKE_MAILPIT", "http://127.0.0.1:8025")
SQS = os.environ.get("ORDERD_SMOKE_SQS", "http://127.0.0.1:4566")
QUEUE = os.environ.get("ORDERD_SMOKE_QUEUE", "orderd-events")
RUN = secrets.token_hex(4)


def step(text):
    print(f"==> {text}", flush=True)


def fail(text):
    print(f"FAILED: {text}", file=sys.stderr, flush=True)
    sys.exit(1)


def request(method, url, body=None, token=None, headers=None):
    """(status, parsed JSON or text) of one HTTP call; never raises for an HTTP status."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("accept", "application/json")
    if body is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw = resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
        return 0, str(err)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def expect(status, want, what, answer):
    if status != want:
        fail(f"{what}: expected HTTP {want}, got {status}: {answer}")
    return answer


def wait_for(what, check, timeout_s=120, every_s=1.0):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        ok, last = check()
        if ok:
            return last
        time.sleep(every_s)
    fail(f"{what} within {timeout_s} s; last seen: {last}")


def compose(*args, check=True):
    cmd = ["docker", "compose", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if check and done.returncode != 0:
        fail(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr or done.stdout}")
    return done.stdout


def wait_ready():
    def ready():
        status, answer = request("GET", f"{API}/api/ready")
        return status == 200, (status, answer)

    wait_for("orderd answering /api/ready with 200", ready)


def login(email, password):
    status, answer = request(
        "POST", f"{API}/api/auth/login", {"email": email, "password": password}
    )
    return expect(status, 200, f"log in as {email}", answer)["accessToken"]


def main():
    if not os.environ.get("ORDERD_JWT_SECRET"):
        # docker compose needs it to run anything, and the restarted orderd must sign with the
        # secret the stack was started with, or the tokens taken before are refused.
        fail("export ORDERD_JWT_SECRET with the value the stack was started with")
    wait_ready()

    step("an admin adds a product")
    admin_email, admin_password = f"smoke-admin-{RUN}@example.com", secrets.token_hex(12)
    compose(
        "exec", "-T", "orderd", "/usr/local/bin/orderd", "admin", "create",
        "--email", admin_email, "--password", admin_password,
    )
    admin = login(admin_email, admin_password)
    status, product = request(
        "POST", f"{API}/api/products",
        {"name": "Masala chai", "sku": f"SMOKE-{RUN}", "category": "essentials",
         "price": 49900, "currency": "INR", "stock": 10},
        token=admin,
    )
    product_id = expect(status, 201, "create a product", product)["id"]

    step("a customer registers and logs in")
    email, password = f"smoke-{RUN}@example.com", secrets.token_hex(12)
    status, answer = request(
        "POST", f"{API}/api/auth/register",
        {"username": f"smoke_{RUN}", "email": email, "password": password},
    )
    expect(status, 201, "register", answer)
    customer = login(email, password)

    step("orderd without its consumer: the order's message waits in LocalStack SQS")
    compose("stop", "orderd")
    api_only = f"orderd-smoke-{RUN}"
    compose(
        "run", "-d", "--no-deps", "--service-ports", "--name", api_only,
        "-e", "ORDERD_ROLES=api,relay", "orderd",
    )
    try:
        wait_ready()
        status, order = request(
            "POST", f"{API}/api/orders",
            {"items": [{"productId": product_id, "quantity": 2}]},
            token=customer, headers={"idempotency-key": f"smoke-{RUN}"},
        )
        order_id = expect(status, 201, "place an order", order)["id"]
        queue_url = compose(
            "exec", "-T", "localstack", "awslocal", "sqs", "get-queue-url",
            "--queue-name", QUEUE, "--query", "QueueUrl", "--output", "text",
        ).strip()
        # LocalStack's developer endpoint lists a queue's messages without receiving them.
        peek = f"{SQS}/_aws/sqs/messages?" + urllib.parse.urlencode({"QueueUrl": queue_url})

        def queued():
            status, answer = request("GET", peek)
            return status == 200 and order_id in json.dumps(answer), (status, answer)

        wait_for(f"a message of order {order_id} in {QUEUE}", queued, timeout_s=60)
    finally:
        subprocess.run(["docker", "rm", "-f", api_only], capture_output=True)
    compose("start", "orderd")
    wait_ready()

    step("the consumer processes the order")

    def processed():
        status, answer = request("GET", f"{API}/api/orders/{order_id}", token=customer)
        return status == 200 and answer.get("status") == "processed", (status, answer)

    wait_for(f"order {order_id} processed", processed, timeout_s=120)

    step("the confirmation e-mail is in Mailpit")
    search = f"{MAILPIT}/api/v1/search?" + urllib.parse.urlencode({"query": f"to:{email}"})

    def mailed():
        status, answer = request("GET", search)
        found = status == 200 and isinstance(answer, dict) and answer.get("messages_count", 0) > 0
        return found, (status, answer)

    mail = wait_for(f"an e-mail to {email} in Mailpit", mailed, timeout_s=60)[1]
    subject = mail["messages"][0].get("Subject", "")
    print(f"smoke passed: order {order_id} processed; e-mail \"{subject}\" to {email}")


if __name__ == "__main__":
    main()
