// The console's shared parts: its state, DOM helpers that put text in as text nodes, and the
// API client (the access token lives in memory only; a 401 renews it once through the
// refresh cookie).
export const REFRESH_MS = 3000;
// Set while this tab has a session, so a reload renews it through the refresh cookie (which
// scripts cannot see) and a first visit does not ask for a renewal that can only fail.
export const SESSION_FLAG = "orderd-console-session";
export const SLOTS = ["tax", "validation", "email"];

export const state = {
  token: null,
  user: null,
  timer: null,
  openOrder: null,
  busy: false,
};

/** Set by app.js: what a lost session does. */
export const hooks = { signedOut: () => {} };

// ---------- small DOM helpers ----------

export function $(selector, root) {
  return (root || document).querySelector(selector);
}

/** An element with attributes (class, data-*, …) and children (strings become text). */
export function h(tag, attrs, ...children) {
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

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function say(el, text, kind) {
  el.textContent = text || "";
  el.classList.toggle("error", kind === "error");
  el.classList.toggle("ok", kind === "ok");
}

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { hour12: false });
}

export function shortSha(sha) {
  return sha ? sha.slice(0, 12) : "–";
}

/** Minor units as an amount in the currency's own decimals. */
export function money(minor, currency) {
  try {
    const format = new Intl.NumberFormat("en", { style: "currency", currency });
    const digits = format.resolvedOptions().maximumFractionDigits;
    return format.format(minor / 10 ** digits);
  } catch (_) {
    return minor + " " + currency;
  }
}

export function ms(value) {
  return value === null || value === undefined ? "–" : value.toFixed(value < 10 ? 2 : 1) + " ms";
}

// ---------- the API ----------

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || "HTTP " + status);
    this.status = status;
    this.problem = problem;
  }
}

export async function refreshToken() {
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
export async function api(method, path, body, contentType, retried) {
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
    hooks.signedOut("Your session ended; sign in again.");
    throw new ApiError(401, payload);
  }
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

