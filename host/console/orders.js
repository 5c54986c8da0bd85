// The Orders section: search by id, customer e-mail or status, and one order's timeline.
import { $, h, clear, say, when, money, api, state } from "/console/core.js";

export async function searchOrders(event) {
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

export async function refreshTimeline() {
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
        h("span", { class: "when" }, stepTime(step.at)),
        h("span", { class: "kind" }, step.kind),
        step.detail,
        step.messageId ? h("span", {}, " — Message-ID ", h("code", { class: "message-id" }, step.messageId)) : null,
      ),
    ),
  );
}


/** A step's time to the millisecond: the steps of one order are often within a second. */
function stepTime(iso) {
  const d = new Date(iso);
  return d.toLocaleDateString(undefined) + " " + d.toLocaleTimeString(undefined, {
    hour12: false,
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    fractionalSecondDigits: 3,
  });
}
