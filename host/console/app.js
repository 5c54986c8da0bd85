// The operator console. Plain JavaScript modules, no library and no build step: this one
// signs an admin in through /api/auth and refreshes the three sections every few seconds.

import { $, say, refreshToken, state, hooks, REFRESH_MS, SESSION_FLAG, ApiError } from "/console/core.js";
import { refreshRules } from "/console/rules.js";
import { refreshDelivery } from "/console/delivery.js";
import { searchOrders, refreshTimeline } from "/console/orders.js";

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

// ---------- start ----------

document.addEventListener("DOMContentLoaded", async () => {
  $("#signin-form").addEventListener("submit", signIn);
  $("#signout").addEventListener("click", signOut);
  $("#order-search").addEventListener("submit", searchOrders);
  // A refresh cookie from an earlier visit signs the admin in again without a password.
  if (sessionStorage.getItem(SESSION_FLAG) && (await refreshToken())) signedIn();
  else signedOut("");
});


hooks.signedOut = signedOut;
