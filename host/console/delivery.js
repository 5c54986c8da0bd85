// The Delivery section: the figures an operator acts on, the live chart (inline SVG), dead
// outbox events to retry and failed orders to retry or cancel.
import { $, h, clear, say, when, money, api } from "/console/core.js";

export async function refreshDelivery() {
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

