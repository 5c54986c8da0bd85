// The Rules section: one card per slot with its active version, live calls per version,
// uploaded versions with rollback, the shadow's counts and an upload box (dry run first).
import { $, h, clear, say, when, shortSha, ms, api, SLOTS } from "/console/core.js";

export async function refreshRules() {
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

