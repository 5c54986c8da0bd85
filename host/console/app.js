// The operator console. Plain JavaScript, no library and no build step: it signs an admin in
// through /api/auth, keeps the access token in memory only (the refresh cookie renews it),
// and draws what the admin endpoints answer. Text always goes into the page as text nodes.
"use strict";

const REFRESH_MS = 3000;
// Set while this tab has a session, so a reload renews it through the refresh cookie (which
// scripts cannot see) and a first visit does not ask for a renewal that can only fail.
const SESSION_FLAG = "orderd-console-session";
const SLOTS = ["tax", "validation", "email"];

const state = {
  token: null,
  user: null,
  timer: null,
  openOrder: null,
  busy: false,
};

// ---------- small DOM helpers ----------

function $(selector, root) {
  return (root || document).querySelector(selector);
}

/** An element with attributes (class, data-*, …) and children (strings become text). */
function h(tag, attrs, ...children) {
  const svg = ["svg", "path", "line", "text", "g", "polyline"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "onclick") el.addEventListener("click", value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

function say(el, text, kind) {
  el.textContent = text || "";
  el.classList.toggle("error", kind === "error");
  el.classList.toggle("ok", kind === "ok");
}

function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { hour12: false });
}

function shortSha(sha) {
  return sha ? sha.slice(0, 12) : "–";
}

/** Minor units as an amount in the currency's own decimals. */
function money(minor, currency) {
  try {
    const format = new Intl.NumberFormat("en", { style: "currency", currency });
    const digits = format.resolvedOptions().maximumFractionDigits;
    return format.format(minor / 10 ** digits);
  } catch (_) {
    return minor + " " + currency;
  }
}

function ms(value) {
  return value === null || value === undefined ? "–" : value.toFixed(value < 10 ? 2 : 1) + " ms";
}

// ---------- the API ----------

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || "HTTP " + status);
    this.status = status;
    this.problem = problem;
  }
}

async function refreshToken() {
  const response = await fetch("/api/auth/refresh", { method: "POST", credentials: "same-origin" });
  if (!response.ok) return false;
  const body = await response.json();
  if (body.user.role !== "admin") return false;
  state.token = body.accessToken;
  state.user = body.user;
  sessionStorage.setItem(SESSION_FLAG, "1");
  return true;
}

/** Calls an admin endpoint; on a 401 renews the token once through the refresh cookie. */
async function api(method, path, body, contentType, retried) {
  const headers = {};
  if (state.token) headers.authorization = "Bearer " + state.token;
  if (body !== undefined) headers["content-type"] = contentType || "application/json";
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : contentType ? body : JSON.stringify(body),
  });
  if (response.status === 401 && !retried && (await refreshToken())) {
    return api(method, path, body, contentType, true);
  }
  const type = response.headers.get("content-type") || "";
  const payload = type.includes("json") ? await response.json() : null;
  if (response.status === 401) {
    signedOut("Your session ended; sign in again.");
    throw new ApiError(401, payload);
  }
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

// ---------- signing in and out ----------

function signedOut(message, kind) {
  state.token = null;
  state.user = null;
  sessionStorage.removeItem(SESSION_FLAG);
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
  $("#console").hidden = true;
  $("#session").hidden = true;
  $("#signin").hidden = false;
  say($("#signin-message"), message, kind || (message ? "error" : ""));
}

function signedIn() {
  $("#signin").hidden = true;
  $("#console").hidden = false;
  $("#session").hidden = false;
  $("#whoami").textContent = state.user.email;
  say($("#signin-message"), "");
  refreshAll();
  state.timer = setInterval(refreshAll, REFRESH_MS);
}

async function signIn(event) {
  event.preventDefault();
  const email = $("#signin-email").value;
  const password = $("#signin-password").value;
  say($("#signin-message"), "Signing in…");
  const response = await fetch("/api/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ email, password }),
  });
  const body = await response.json();
  if (!response.ok) {
    say($("#signin-message"), body.detail || "Sign-in failed.", "error");
    return;
  }
  $("#signin-password").value = "";
  if (body.user.role !== "admin") {
    // A customer's session is of no use here: end it at once.
    await fetch("/api/auth/logout", { method: "POST", credentials: "same-origin" });
    signedOut("Not allowed: " + body.user.email + " is not an administrator.");
    return;
  }
  state.token = body.accessToken;
  state.user = body.user;
  sessionStorage.setItem(SESSION_FLAG, "1");
  signedIn();
}

async function signOut() {
  await fetch("/api/auth/logout", { method: "POST", credentials: "same-origin" });
  signedOut("Signed out.", "ok");
}

// ---------- refreshing ----------

async function refreshAll() {
  if (state.busy || !state.token) return;
  state.busy = true;
  try {
    await Promise.all([refreshRules(), refreshDelivery(), refreshTimeline()]);
    $("#refreshed").textContent = "updated " + new Date().toLocaleTimeString(undefined, { hour12: false });
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      $("#refreshed").textContent = "update failed: " + err.message;
    }
  } finally {
    state.busy = false;
  }
}

// ---------- rules ----------

async function refreshRules() {
  const [slots, stats] = await Promise.all([api("GET", "/api/admin/plugins"), api("GET", "/api/admin/plugins/stats")]);
  $("#window-minutes").textContent = stats.windowMinutes;
  const details = await Promise.all(
    SLOTS.map((slot) =>
      Promise.all([api("GET", `/api/admin/plugins/${slot}/versions`), api("GET", `/api/admin/plugins/${slot}/shadow`)]),
    ),
  );
  SLOTS.forEach((slot, i) => {
    const status = slots.slots.find((s) => s.slot === slot);
    const slotStats = stats.slots.find((s) => s.slot === slot);
    renderRuleCard(slot, status, slotStats, details[i][0], details[i][1].shadow);
  });
}

/** The card of `slot`, created once; its upload form keeps what the admin typed. */
function ruleCard(slot) {
  let card = $(`.card[data-slot="${slot}"]`);
  if (card) return card;
  card = h(
    "article",
    { class: "card", "data-slot": slot },
    h("h3", {}, slot),
    h("dl", { class: "facts active" }),
    h("div", { class: "stats" }),
    h("div", { class: "versions" }),
    h("div", { class: "shadow" }),
    uploadForm(slot),
  );
  $("#rule-cards").append(card);
  return card;
}

function uploadForm(slot) {
  const file = h("input", { type: "file", class: "wasm-file", accept: ".wasm,application/wasm" });
  const policy = h(
    "select",
    { class: "policy" },
    h("option", { value: "" }, "policy: slot default"),
    h("option", { value: "fail-closed" }, "fail-closed"),
    h("option", { value: "fallback" }, "fallback"),
  );
  const config = h("textarea", { class: "config", placeholder: "config, one key=value a line" });
  const result = h("div", { class: "result" });
  const message = h("p", { class: "message upload-message", role: "status" });
  const run = (mode) => () => upload(slot, { file, policy, config, result, message }, mode);
  return h(
    "div",
    { class: "upload" },
    h("strong", {}, "New version"),
    h("div", { class: "row" }, file, policy),
    config,
    h(
      "div",
      { class: "row" },
      h("button", { type: "button", class: "dry-run", onclick: run("dry-run") }, "Dry run"),
      h("button", { type: "button", class: "activate primary", onclick: run("activate") }, "Activate"),
      h("button", { type: "button", class: "start-shadow", onclick: run("shadow") }, "Run as shadow"),
    ),
    message,
    result,
  );
}

function uploadQuery(parts) {
  const query = new URLSearchParams();
  if (parts.policy.value) query.append("policy", parts.policy.value);
  for (const line of parts.config.value.split("\n")) {
    if (line.trim()) query.append("config", line.trim());
  }
  return query;
}

async function upload(slot, parts, mode) {
  const chosen = parts.file.files[0];
  if (!chosen) {
    say(parts.message, "Choose a .wasm file first.", "error");
    return;
  }
  const bytes = await chosen.arrayBuffer();
  const query = uploadQuery(parts);
  try {
    if (mode === "dry-run") {
      say(parts.message, "Dry run…");
      const report = await api("POST", `/api/admin/plugins/${slot}/dry-run?${query}`, bytes, "application/wasm");
      say(parts.message, "");
      showDryRun(parts.result, report);
    } else if (mode === "shadow") {
      query.append("mode", "shadow");
      await api("PUT", `/api/admin/plugins/${slot}?${query}`, bytes, "application/wasm");
      say(parts.message, "Shadow started: it now runs beside the active version on live calls.", "ok");
    } else {
      const uploaded = await api("PUT", `/api/admin/plugins/${slot}?${query}`, bytes, "application/wasm");
      say(parts.message, "Activated " + shortSha(uploaded.version.sha256) + ".", "ok");
      clear(parts.result);
    }
    await refreshRules();
  } catch (err) {
    say(parts.message, err.message, "error");
  }
}

function showDryRun(target, report) {
  const s = report.summary;
  const items = report.items.filter((item) => item.differs || item.candidate.errorKind);
  clear(target).append(
    h(
      "p",
      { class: "dry-run-summary" },
      `Dry run of ${shortSha(report.sha256)} against ${shortSha(report.activeSha256)}: ${s.inputs} inputs ` +
        `(${s.recorded} recorded), ${s.differing} differ, ${s.candidateFailures} candidate failures.`,
    ),
    ...items.slice(0, 5).map((item) =>
      h(
        "div",
        { class: "diff" },
        `${item.source}${item.recordedSeq !== null && item.recordedSeq !== undefined ? " #" + item.recordedSeq : ""} ${item.function}:`,
        h("pre", {}, "active:    " + JSON.stringify(item.active.output || item.active.error)),
        h("pre", {}, "candidate: " + JSON.stringify(item.candidate.output || item.candidate.error)),
      ),
    ),
  );
}

function renderRuleCard(slot, status, stats, versions, shadow) {
  const card = ruleCard(slot);
  const upload = stats.upload;
  clear($(".facts.active", card)).append(
    h("dt", {}, "Active"),
    h("dd", {}, h("code", { class: "active-version" }, shortSha(status.sha256)), " ", h("span", { class: "badge active-source" }, status.source || "none")),
    h("dt", {}, "Since"),
    h("dd", { class: "active-since" }, when(status.loadedAt)),
    h("dt", {}, "Uploaded by"),
    h("dd", { class: "active-by" }, upload ? `${upload.uploadedBy || "unknown"} at ${when(upload.uploadedAt)}` : "–"),
    h("dt", {}, "Policy"),
    h("dd", { class: "active-policy" }, status.policy || "–"),
    h("dt", {}, "Generation"),
    h("dd", { class: "active-generation" }, status.generation),
  );

  const rows = stats.versions.map((v) =>
    h(
      "tr",
      { "data-version": v.version },
      h("td", {}, h("code", {}, v.version), v.active ? h("span", { class: "badge active" }, " active") : null),
      h("td", { class: "num calls" }, v.calls),
      h("td", { class: "num failures" }, v.failures),
      h("td", { class: "num" }, ms(v.p50Ms)),
      h("td", { class: "num" }, ms(v.p99Ms)),
    ),
  );
  clear($(".stats", card)).append(
    rows.length
      ? h(
          "table",
          { class: "grid" },
          h("thead", {}, h("tr", {}, h("th", {}, "Version"), h("th", { class: "num" }, "Calls"), h("th", { class: "num" }, "Failures"), h("th", { class: "num" }, "p50"), h("th", { class: "num" }, "p99"))),
          h("tbody", {}, rows),
        )
      : h("p", { class: "muted" }, "No calls in the window."),
  );

  const list = versions.items.map((v) =>
    h(
      "li",
      { "data-version-id": v.id },
      h("code", {}, shortSha(v.sha256)),
      " ",
      when(v.createdAt),
      v.id === versions.activeVersionId ? h("span", { class: "badge active" }, "active") : null,
    ),
  );
  const rollback = h(
    "button",
    { type: "button", class: "rollback danger", disabled: status.source !== "upload", onclick: () => rollBack(slot, card) },
    "Roll back",
  );
  clear($(".versions", card)).append(
    h("strong", {}, "Uploaded versions "),
    rollback,
    list.length ? h("ol", { class: "version-list" }, list) : h("p", { class: "muted" }, "None: the built-in default serves."),
  );

  const shadowBox = clear($(".shadow", card));
  if (shadow) {
    shadowBox.append(
      h("strong", {}, "Shadow "),
      h("code", {}, shortSha(shadow.sha256)),
      h(
        "p",
        { class: "shadow-counts" },
        h("span", { class: "badge agree" }, `${shadow.agreements} agree`),
        " ",
        h("span", { class: "badge diverge" }, `${shadow.divergences} diverge`),
        ` ${shadow.failures} failed, ${shadow.dropped} dropped since ${when(shadow.startedAt)}`,
      ),
      h("button", { type: "button", class: "promote", onclick: () => shadowAction(slot, card, "POST", "promote") }, "Promote"),
      " ",
      h("button", { type: "button", class: "stop-shadow", onclick: () => shadowAction(slot, card, "DELETE", "shadow") }, "Stop shadow"),
    );
  }
}

async function rollBack(slot, card) {
  const message = $(".upload-message", card);
  try {
    const done = await api("POST", `/api/admin/plugins/${slot}/rollback`);
    say(message, "Rolled back to " + (done.version ? shortSha(done.version.sha256) : "the built-in default") + ".", "ok");
    await refreshRules();
  } catch (err) {
    say(message, err.message, "error");
  }
}

async function shadowAction(slot, card, method, what) {
  const message = $(".upload-message", card);
  try {
    await api(method, `/api/admin/plugins/${slot}/${what}`);
    say(message, what === "promote" ? "Shadow promoted and active." : "Shadow stopped.", "ok");
    await refreshRules();
  } catch (err) {
    say(message, err.message, "error");
  }
}

// ---------- delivery ----------

async function refreshDelivery() {
  const [overview, dead, failed] = await Promise.all([
    api("GET", "/api/admin/delivery"),
    api("GET", "/api/admin/outbox?status=dead&limit=50"),
    api("GET", "/api/admin/orders?status=failed&limit=50"),
  ]);
  const figure = (id, value) => ($(id).textContent = value === null || value === undefined ? "n/a" : value);
  figure("#figure-outbox-pending", overview.outboxPending);
  figure("#figure-outbox-dead", overview.outboxDead);
  figure("#figure-queue-backlog", overview.queueBacklog);
  figure("#figure-dead-lettered", overview.deadLettered);
  figure("#figure-failed-orders", overview.failedOrders);
  drawChart(overview.samples);

  const deadRows = dead.items.map((e) =>
    h(
      "tr",
      { "data-event-id": e.id },
      h("td", {}, h("code", {}, e.id)),
      h("td", {}, h("code", {}, e.orderId)),
      h("td", {}, e.type),
      h("td", { class: "num" }, e.attempts),
      h("td", {}, e.lastError || ""),
      h("td", {}, h("button", { type: "button", class: "retry-event", onclick: () => retryEvent(e.id) }, "Retry")),
    ),
  );
  clear($("#dead-events tbody")).append(...deadRows);
  $("#dead-events-empty").hidden = deadRows.length > 0;

  const failedRows = failed.items.map((o) =>
    h(
      "tr",
      { "data-order-id": o.id },
      h("td", {}, h("code", {}, o.id)),
      h("td", {}, o.customerEmail || "–"),
      h("td", { class: "num" }, money(o.total, o.currency)),
      h("td", {}, when(o.updatedAt)),
      h(
        "td",
        {},
        h("button", { type: "button", class: "retry-order", onclick: () => orderAction(o.id, "retry") }, "Retry"),
        " ",
        h("button", { type: "button", class: "cancel-order danger", onclick: () => orderAction(o.id, "cancel") }, "Cancel"),
      ),
    ),
  );
  clear($("#failed-orders tbody")).append(...failedRows);
  $("#failed-orders-empty").hidden = failedRows.length > 0;
}

async function retryEvent(id) {
  try {
    await api("POST", `/api/admin/outbox/${id}/retry`);
    say($("#delivery-message"), `Event ${id} is pending again; the relay publishes it next.`, "ok");
    await refreshDelivery();
  } catch (err) {
    say($("#delivery-message"), err.message, "error");
  }
}

async function orderAction(id, action) {
  try {
    await api("POST", `/api/orders/${id}/${action}`);
    say($("#delivery-message"), `Order ${id}: ${action === "retry" ? "pending again" : "cancelled"}.`, "ok");
    await refreshDelivery();
  } catch (err) {
    say($("#delivery-message"), err.message, "error");
  }
}

/** Accepted and processed orders per second (left scale) and backlog (right scale). */
function drawChart(samples) {
  const svg = clear($("#delivery-chart"));
  const W = 720, H = 200, L = 34, R = 40, T = 10, B = 22;
  svg.append(h("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  if (samples.length < 2) {
    svg.append(h("text", { class: "tick", x: L + 8, y: H / 2 }, "collecting samples…"));
    $("#chart-scale").textContent = "";
    return;
  }
  const t0 = Date.parse(samples[0].at);
  const t1 = Date.parse(samples[samples.length - 1].at);
  const span = Math.max(t1 - t0, 1);
  const backlog = (s) => s.outboxPending + (s.queueBacklog || 0);
  const maxRate = Math.max(1, ...samples.map((s) => Math.max(s.acceptedPerSec, s.processedPerSec)));
  const maxBacklog = Math.max(1, ...samples.map(backlog));
  const x = (s) => L + ((Date.parse(s.at) - t0) / span) * (W - L - R);
  const y = (v, max) => H - B - (v / max) * (H - T - B);
  const line = (cls, value, max) =>
    h("polyline", { class: "line " + cls, points: samples.map((s) => `${x(s).toFixed(1)},${y(value(s), max).toFixed(1)}`).join(" ") });
  svg.append(
    line("backlog", backlog, maxBacklog),
    line("accepted", (s) => s.acceptedPerSec, maxRate),
    line("processed", (s) => s.processedPerSec, maxRate),
    h("text", { class: "tick", x: 2, y: T + 10 }, maxRate.toFixed(1)),
    h("text", { class: "tick", x: 2, y: H - B }, "0"),
    h("text", { class: "tick", x: W - R + 4, y: T + 10 }, String(maxBacklog)),
    h("text", { class: "tick", x: L, y: H - 6 }, `-${Math.round(span / 1000)} s`),
    h("text", { class: "tick", x: W - R - 24, y: H - 6 }, "now"),
  );
  const last = samples[samples.length - 1];
  $("#chart-scale").textContent =
    `now: ${last.acceptedPerSec.toFixed(1)} accepted/s, ${last.processedPerSec.toFixed(1)} processed/s, backlog ${backlog(last)}`;
}

// ---------- orders ----------

async function searchOrders(event) {
  event.preventDefault();
  const query = new URLSearchParams();
  const q = $("#order-q").value.trim();
  const status = $("#order-status").value;
  if (q) query.set("q", q);
  if (status) query.set("status", status);
  try {
    const found = await api("GET", "/api/admin/orders?" + query);
    say($("#orders-message"), found.items.length ? "" : "No order found.");
    const rows = found.items.map((o) =>
      h(
        "tr",
        { class: "clickable", "data-order-id": o.id, onclick: () => openOrder(o.id) },
        h("td", {}, h("code", {}, o.id)),
        h("td", {}, h("span", { class: "badge " + o.status }, o.status)),
        h("td", {}, o.customerEmail || "–"),
        h("td", { class: "num" }, money(o.taxTotal, o.currency)),
        h("td", { class: "num" }, money(o.total, o.currency)),
        h("td", {}, when(o.createdAt)),
      ),
    );
    clear($("#order-results tbody")).append(...rows);
    if (found.items.length === 1) openOrder(found.items[0].id);
  } catch (err) {
    say($("#orders-message"), err.message, "error");
  }
}

function openOrder(id) {
  state.openOrder = id;
  for (const row of document.querySelectorAll("#order-results tr")) {
    row.classList.toggle("selected", row.dataset.orderId === id);
  }
  return refreshTimeline();
}

async function refreshTimeline() {
  if (!state.openOrder) return;
  const t = await api("GET", `/api/admin/orders/${state.openOrder}/timeline`);
  const o = t.order;
  $("#order-timeline").hidden = false;
  $("#timeline-id").textContent = o.id;
  clear($("#timeline-status")).append(h("span", { class: "badge " + o.status }, o.status));
  $("#timeline-customer").textContent = t.customerEmail || "–";
  $("#timeline-subtotal").textContent = money(o.subtotal, o.currency);
  const rates = [...new Set(o.taxLines.map((l) => `${l.rateName} ${l.rateBps / 100}%`))].join(", ");
  const tax = $("#timeline-tax");
  tax.textContent = money(o.taxTotal, o.currency) + (rates ? ` (${rates})` : "");
  tax.dataset.minor = o.taxTotal;
  $("#timeline-total").textContent = money(o.total, o.currency);
  clear($("#timeline-steps")).append(
    ...t.timeline.map((step) =>
      h(
        "li",
        { "data-kind": step.kind },
        h("span", { class: "when" }, when(step.at)),
        h("span", { class: "kind" }, step.kind),
        step.detail,
        step.messageId ? h("span", {}, " — Message-ID ", h("code", { class: "message-id" }, step.messageId)) : null,
      ),
    ),
  );
}

// ---------- start ----------

document.addEventListener("DOMContentLoaded", async () => {
  $("#signin-form").addEventListener("submit", signIn);
  $("#signout").addEventListener("click", signOut);
  $("#order-search").addEventListener("submit", searchOrders);
  // A refresh cookie from an earlier visit signs the admin in again without a password.
  if (sessionStorage.getItem(SESSION_FLAG) && (await refreshToken())) signedIn();
  else signedOut("");
});
