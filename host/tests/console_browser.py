"""The operator console in a real browser: Debian's headless Chromium driven by Selenium
through the system chromedriver (nothing is downloaded). Run by host/tests/console_browser.rs,
which starts orderd and passes everything through the environment:

  CONSOLE_URL          http://127.0.0.1:PORT
  ADMIN_EMAIL, ADMIN_PASSWORD, CUSTOMER_EMAIL, CUSTOMER_PASSWORD
  PRODUCT_ID           a product priced 10,000 minor units
  TAX_WASM             the flat 10 % tax component to upload
  DEAD_EVENT_ID        an outbox event the relay gave up on
  CHROMEDRIVER, CHROMIUM, SCREENSHOT_DIR

Exits non-zero on the first failed check, and on any error in the browser's console log.
"""

import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

# Selenium Manager must never look for or download a browser or driver.
os.environ["SE_OFFLINE"] = "true"

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

URL = os.environ["CONSOLE_URL"]
SHOTS = os.environ["SCREENSHOT_DIR"]
WAIT = 30


def step(text):
    print(f"-- {text}", flush=True)


def http(method, path, body=None, token=None):
    """(status, JSON body or None) of a request to orderd."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(URL + path, data=data, method=method)
    if body is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None


def login(email, password):
    status, body = http("POST", "/api/auth/login", {"email": email, "password": password})
    assert status == 200, (status, body)
    return body["accessToken"]


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ["CHROMIUM"]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1360,1000",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=os.environ["CHROMEDRIVER"]), options=options)


class Console:
    def __init__(self, driver):
        self.driver = driver
        self.log = []

    def wait(self, what, condition):
        # The page redraws every few seconds: an element found a moment ago may be replaced.
        wait = WebDriverWait(self.driver, WAIT, poll_frequency=0.2,
                             ignored_exceptions=(StaleElementReferenceException,))
        try:
            return wait.until(lambda d: condition())
        except TimeoutException:
            self.shot("failed")
            raise AssertionError(f"timed out waiting for {what}")

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css):
        found = self.finds(css)
        return found[0].text if found else ""

    def visible(self, css):
        found = self.finds(css)
        return bool(found) and found[0].is_displayed()

    def shot(self, name):
        path = os.path.join(SHOTS, f"console-{name}.png")
        self.driver.save_screenshot(path)
        print(f"   screenshot {path}", flush=True)

    def collect_log(self):
        self.log.extend(self.driver.get_log("browser"))

    def sign_in(self, email, password):
        self.find("#signin-email").clear()
        self.find("#signin-email").send_keys(email)
        self.find("#signin-password").send_keys(password)
        self.find("#signin-form button[type=submit]").click()


def main():
    admin_email = os.environ["ADMIN_EMAIL"]
    customer_email = os.environ["CUSTOMER_EMAIL"]
    customer_password = os.environ["CUSTOMER_PASSWORD"]
    wasm = os.environ["TAX_WASM"]
    with open(wasm, "rb") as f:
        flat_sha = hashlib.sha256(f.read()).hexdigest()[:12]
    dead_event = os.environ["DEAD_EVENT_ID"]

    step("a customer's token gets no console data")
    customer_token = login(customer_email, customer_password)
    for path in ("/api/admin/plugins", "/api/admin/plugins/stats", "/api/admin/delivery",
                 "/api/admin/outbox?status=dead", "/api/admin/orders?status=failed",
                 "/api/admin/plugins/tax/versions", "/api/admin/plugins/tax/shadow"):
        status, body = http("GET", path, token=customer_token)
        assert status == 403 and body["type"].endswith(":forbidden"), (path, status, body)
        status, _ = http("GET", path)
        assert status == 401, (path, status)

    driver = browser()
    console = Console(driver)
    try:
        driver.get(URL + "/console")
        console.wait("the sign-in form", lambda: console.visible("#signin-form"))

        step("a customer signing in is not allowed")
        console.sign_in(customer_email, customer_password)
        console.wait("the refusal", lambda: "Not allowed" in console.text("#signin-message"))
        assert not console.visible("#console"), "no console for a customer"

        step("the admin signs in")
        console.sign_in(admin_email, os.environ["ADMIN_PASSWORD"])
        console.wait("the rule cards", lambda: len(console.finds(".card[data-slot]")) == 3)
        tax = '.card[data-slot="tax"]'
        console.wait("the active tax version", lambda: console.text(f"{tax} .active-version") not in ("", "–"))
        default_sha = console.text(f"{tax} .active-version")
        assert console.text(f"{tax} .active-source") == "embedded", console.text(f"{tax} .active-source")
        assert console.text("#whoami") == admin_email

        step("the dry run of a flat 10 % tax shows how it differs before activation")
        console.find(f"{tax} .wasm-file").send_keys(wasm)
        console.find(f"{tax} .dry-run").click()
        console.wait("the dry-run summary", lambda: "Dry run of " + flat_sha in console.text(f"{tax} .dry-run-summary"))
        summary = console.text(f"{tax} .dry-run-summary")
        assert " 0 differ" not in summary, summary
        assert console.finds(f"{tax} .result .diff"), "the differing inputs are shown"
        assert console.text(f"{tax} .active-version") == default_sha, "a dry run activates nothing"

        step("upload and activate it")
        console.find(f"{tax} .policy option[value=fallback]").click()
        console.find(f"{tax} .activate").click()
        console.wait("the new active version", lambda: console.text(f"{tax} .active-version") == flat_sha)
        assert console.text(f"{tax} .active-source") == "upload"
        assert console.text(f"{tax} .active-policy") == "fallback"
        console.wait("who uploaded it", lambda: admin_email in console.text(f"{tax} .active-by"))

        step("an order placed through the API is taxed by it, processed and e-mailed")
        status, order = http("POST", "/api/orders",
                             {"items": [{"productId": os.environ["PRODUCT_ID"], "quantity": 1}]},
                             token=customer_token)
        assert status == 201, (status, order)
        assert order["taxTotal"] == 1000, order
        console.find('a[href="#orders"]').click()
        console.find("#order-q").send_keys(order["id"])
        console.find("#order-search button[type=submit]").click()
        console.wait("the order's timeline", lambda: console.text("#timeline-id") == order["id"])
        console.wait("the order processed", lambda: console.text("#timeline-status") == "processed")
        console.wait("its e-mail", lambda: console.finds('#timeline-steps li[data-kind="email-sent"] .message-id'))
        message_id = console.text('#timeline-steps li[data-kind="email-sent"] .message-id')
        assert message_id.startswith("<") and message_id.endswith(">"), message_id
        tax_cell = console.find("#timeline-tax")
        assert tax_cell.get_attribute("data-minor") == "1000", tax_cell.get_attribute("data-minor")
        assert "10.00" in tax_cell.text and "flat 10%" in tax_cell.text, tax_cell.text
        for kind in ("created", "published", "processing", "processed"):
            assert console.finds(f'#timeline-steps li[data-kind="{kind}"]'), kind
        row = f'#order-results tr[data-order-id="{order["id"]}"]'
        assert customer_email in console.text(row), console.text(row)
        driver.execute_script("document.querySelector('#orders').scrollIntoView()")
        console.shot("orders")

        step("its calls are counted for the new version")
        calls = f'{tax} tr[data-version="{flat_sha}"] .calls'
        console.wait("the version's calls", lambda: console.text(calls) not in ("", "0"))
        driver.execute_script("window.scrollTo(0, 0)")
        console.shot("rules")

        step("roll the plugin back")
        console.find(f"{tax} .rollback").click()
        console.wait("the built-in default again", lambda: console.text(f"{tax} .active-version") == default_sha)
        console.wait("the rollback's message",
                     lambda: "Rolled back to the built-in default" in console.text(f"{tax} .upload-message"))

        step("run the flat tax as a shadow: a live order shows as a divergence")
        console.find(f"{tax} .start-shadow").click()
        console.wait("the shadow's counts", lambda: console.finds(f"{tax} .shadow-counts"))
        status, again = http("POST", "/api/orders",
                             {"items": [{"productId": os.environ["PRODUCT_ID"], "quantity": 1}]},
                             token=customer_token)
        assert status == 201 and again["taxTotal"] == 1800, (status, again)
        console.wait("one divergence", lambda: "1 diverge" in console.text(f"{tax} .shadow-counts"))
        assert "0 agree" in console.text(f"{tax} .shadow-counts"), console.text(f"{tax} .shadow-counts")
        console.find(f"{tax} .stop-shadow").click()
        console.wait("the shadow gone", lambda: not console.finds(f"{tax} .shadow-counts"))
        assert console.text(f"{tax} .active-version") == default_sha, "a shadow never serves"

        step("retry a dead outbox event")
        console.find('a[href="#delivery"]').click()
        dead_row = f'#dead-events tr[data-event-id="{dead_event}"]'
        console.wait("the dead event", lambda: console.finds(dead_row))
        assert console.text("#figure-outbox-dead") == "1", console.text("#figure-outbox-dead")
        console.find(f"{dead_row} .retry-event").click()
        console.wait("the event pending again", lambda: "pending again" in console.text("#delivery-message"))
        console.wait("the dead list empty", lambda: not console.finds(dead_row))
        console.wait("the chart", lambda: len(console.finds("#delivery-chart polyline")) == 3)
        console.wait("no dead events counted", lambda: console.text("#figure-outbox-dead") == "0")
        driver.execute_script("document.querySelector('#delivery').scrollIntoView()")
        console.shot("delivery")

        step("a reload keeps the admin signed in through the refresh cookie")
        driver.refresh()
        console.wait("the console again", lambda: console.visible("#console"))
        console.wait("the rule cards again", lambda: len(console.finds(".card[data-slot]")) == 3)

        step("signing out ends the session")
        console.find("#signout").click()
        console.wait("the sign-in form again", lambda: console.visible("#signin-form"))
        driver.refresh()
        console.wait("no session after a reload", lambda: console.visible("#signin-form"))
        assert not console.visible("#console")

        console.collect_log()
    finally:
        try:
            console.collect_log()
        except Exception:
            pass
        for entry in console.log:
            print(f"   browser log {entry.get('level')}: {entry.get('message')}", flush=True)
        driver.quit()

    errors = [entry for entry in console.log if entry.get("level") == "SEVERE"]
    if errors:
        print(f"FAILED: {len(errors)} errors in the browser console", flush=True)
        return 1
    print("console browser test passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
