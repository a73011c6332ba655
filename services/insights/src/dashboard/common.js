// Shared by the dashboard pages: the API client with the bearer token from the URL
// fragment, formatting, charts (the vendored uPlot) and the freshness in the header.
//
// Auth: open a page as /dashboard#token=<token> (or /dashboard/billboard#token=...) when
// the services require bearer tokens; the token stays in the fragment (never sent to
// the server as part of a URL) and goes out only in the Authorization header of API
// calls. With auth off no token is needed; when the API answers 401 the page asks for it.
"use strict";

const $ = (id) => document.getElementById(id);
const page = new URLSearchParams(location.search);
let token = new URLSearchParams(location.hash.slice(1)).get("token");
const HOUR = 3600 * 1000;
const EPOCH = 30 * 60 * 1000;
const AUTO_REFRESH = 5000;
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d"];

const state = { videoId: null, charts: {}, onToken: null };

async function api(path) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(path, { headers });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) {
    askForToken();
    throw new Error("this service requires a bearer token: enter it above");
  }
  if (!response.ok) {
    throw new Error(body.message || `${response.status} ${response.statusText}`);
  }
  return body;
}

// Shows the token form; a token entered there goes into the URL fragment (so a reload
// keeps it) and the page's data is fetched again.
function askForToken() {
  const form = $("token-form");
  if (!form.hidden) return;
  form.hidden = false;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    history.replaceState(null, "", `${location.pathname}${location.search}#token=${encodeURIComponent(token)}`);
    form.hidden = true;
    showError(null);
    if (state.onToken) state.onToken();
  }, { once: true });
}

function showError(error) {
  const box = $("error");
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
}

const fmtInt = (n) => (n == null ? "–" : Number(n).toLocaleString("en-US"));
const fmtRate = (r) => (r == null ? "–" : `${(r * 100).toFixed(2)}%`);
const toIso = (ms) => new Date(ms).toISOString().replace(".000Z", "Z");

// The freshness every page shows: counts before `complete_until` no longer change.
function showFreshness(completeUntil) {
  $("freshness").textContent = `complete until: ${completeUntil || "no progress yet"}`;
  $("freshness").dataset.completeUntil = completeUntil || "";
}

// Links to the other pages keep the token fragment.
function keepTokenInLinks() {
  for (const link of document.querySelectorAll("nav a")) {
    const base = link.getAttribute("href").split("#")[0];
    link.setAttribute("href", token ? `${base}#token=${encodeURIComponent(token)}` : base);
  }
}

// One chart per element, replaced on each draw.
function draw(elementId, opts, data) {
  const element = $(elementId);
  if (state.charts[elementId]) {
    state.charts[elementId].destroy();
  }
  const width = Math.max(320, element.clientWidth || 800);
  state.charts[elementId] = new uPlot({ width, height: 300, ...opts }, data, element);
}
