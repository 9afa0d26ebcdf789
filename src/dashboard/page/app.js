// moonauth dashboard: one page, no build step, nothing loaded from elsewhere.
// The token comes from the URL the dashboard printed (?token=…); it is moved into this
// tab's sessionStorage and taken out of the address bar, and sent as a Bearer header.
"use strict";

const TOKEN_KEY = "moonauth-dashboard-token";
const POLL_MS = 2000;

const token = (() => {
  const url = new URL(window.location.href);
  const given = url.searchParams.get("token");
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY) || "";
})();

/** Calls the API: {ok, status, data} (data is the JSON body, or the typed error). */
async function api(method, path, body) {
  const init = { method, headers: { Authorization: "Bearer " + token } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    return { ok: res.ok, status: res.status, data };
  } catch (e) {
    return { ok: false, status: 0, data: { code: "offline", message: "the dashboard is not answering", details: {} } };
  }
}

/** Makes an element: el("div", {class: "x"}, child, "text"). Text is always text, never HTML. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function setBadge(node, state, text) {
  node.dataset.state = state;
  node.textContent = text === undefined ? state : text;
}

function showNotice(text) {
  const n = document.getElementById("notice");
  n.hidden = !text;
  n.textContent = text || "";
}

/** "in 3h 20m", "2m ago": a time relative to now, for people. */
function relative(iso) {
  if (!iso) return "never";
  const ms = Date.parse(iso) - Date.now();
  const abs = Math.abs(ms);
  const m = Math.round(abs / 60000);
  const text = m < 1 ? "under a minute" : m < 60 ? m + "m" : m < 1440 ? Math.floor(m / 60) + "h " + (m % 60) + "m" : Math.floor(m / 1440) + "d " + Math.floor((m % 1440) / 60) + "h";
  return ms >= 0 ? "in " + text : text + " ago";
}

// ---- accounts -----------------------------------------------------------------------

/** One card per alias, kept across refreshes so what is being typed or updated stays. */
const cards = new Map();

function card(alias) {
  if (cards.has(alias)) return cards.get(alias);
  const c = { alias, switchState: null, busy: false };
  c.status = el("span", { class: "badge" });
  c.knob = el("span", { class: "knob", "aria-hidden": "true" });
  c.switchLabel = el("span");
  c.switch = el("button", { class: "switch", role: "switch", type: "button", "data-alias": alias, onclick: () => toggle(c) }, c.knob, c.switchLabel);
  c.switchError = el("div", { class: "error-text", role: "alert" });
  c.details = el("dl");
  c.why = el("div", { class: "why" });
  c.eligibility = el("span", { class: "badge" });
  c.usage = el("div", { class: "bars" });
  c.reauthButton = el("button", { type: "button", "data-action": "reauth", onclick: () => startReauth(c) }, "Re-auth");
  c.reauth = el("div", { class: "reauth", hidden: true });
  c.node = el("article", { class: "card", "data-alias": alias },
    el("h3", {}, alias, c.status, c.eligibility),
    el("div", { class: "row" }, c.switch, c.reauthButton),
    c.switchError, c.why, c.details, c.usage, c.reauth);
  cards.set(alias, c);
  return c;
}

function renderSwitch(c) {
  const state = c.switchState;
  c.switch.dataset.state = state;
  c.switch.setAttribute("aria-checked", state === "on" ? "true" : state === "off" ? "false" : "mixed");
  c.switch.disabled = c.busy;
  c.switchLabel.textContent = { on: "Enabled", off: "Disabled", updating: "Updating…", error: "Error" }[state];
}

function renderAccount(row) {
  const c = card(row.alias);
  setBadge(c.status, row.status);
  if (!c.busy) {
    // An error stays shown until the next click; the switch itself shows the store.
    c.switchState = c.switchError.textContent ? "error" : row.enabled ? "on" : "off";
    c.enabledInStore = row.enabled;
    renderSwitch(c);
  }
  c.details.replaceChildren(...[
    el("dt", {}, "runtime"), el("dd", {}, row.runtime + " · " + row.kind),
    el("dt", {}, "login"), el("dd", {}, row.login),
    el("dt", {}, "priority"), el("dd", {}, row.priority),
    el("dt", {}, "last used"), el("dd", {}, relative(row.last_used)),
    row.cooldown_until ? [el("dt", {}, "cooldown"), el("dd", {}, "until " + row.cooldown_until + " (" + relative(row.cooldown_until) + ")")] : null,
    row.needs_relogin ? [el("dt", {}, "re-login"), el("dd", {}, "needed" + (row.last_failure ? ": " + row.last_failure.reason : ""))] : null,
    row.fix ? [el("dt", {}, "fix"), el("dd", {}, row.fix)] : null,
  ].flat().filter(Boolean));
  c.eligibility.dataset.state = row.eligible ? (row.tier || "normal") : "out";
  c.eligibility.textContent = row.forced ? "forced" : row.eligible ? (row.tier === "normal" ? "eligible" : row.tier) : "not eligible";
  c.why.textContent = row.why || (row.problem ? row.problem.detail : "");
  c.reauthButton.hidden = row.kind !== "oauth";
  renderUsage(c, row);
  return c.node;
}

/** Usage windows with their freshness and recent history; an unknown window is shown as unknown, never as 0%. */
function renderUsage(c, row) {
  const u = row.usage_windows;
  if (!u) { c.usage.replaceChildren(); return; }
  const fresh = el("span", { class: "badge", "data-freshness": u.freshness });
  setBadge(fresh, u.freshness);
  const head = el("div", { class: "muted" }, "usage ", fresh,
    u.captured_at ? " captured " + relative(u.captured_at) : " never captured",
    u.error ? " · last capture failed: " + u.error : "");
  const bars = u.windows.map(w => usageBar(w, u.freshness, (u.history || {})[w.name] || []));
  c.usage.replaceChildren(head, ...bars);
}

function usageBar(w, freshness, history) {
  const left = typeof w.remaining_percent === "number" ? w.remaining_percent : null;
  const fill = el("div", { class: "fill" });
  if (left === null) {
    fill.classList.add("unknown");
  } else {
    fill.style.width = Math.max(0, Math.min(100, left)) + "%";
    const t = thresholds();
    if (left < t.critical) fill.classList.add("critical");
    else if (left < t.low) fill.classList.add("low");
  }
  const label = left === null ? "unknown" : Math.round(left) + "% left";
  const resets = w.resets_at ? "resets " + relative(w.resets_at) : "";
  return el("div", { class: "bar", "data-window": w.name, title: resets },
    el("span", {}, w.name), el("div", { class: "track" }, fill), el("span", {}, label),
    history.length > 1 ? historyChart(history) : null);
}

/** A small inline SVG line of percent used over the kept snapshots (oldest first). */
function historyChart(points) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "history");
  svg.setAttribute("viewBox", "0 0 100 30");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "percent used over the last " + points.length + " snapshots");
  const ts = points.map(p => Date.parse(p.at));
  const t0 = Math.min(...ts), t1 = Math.max(...ts);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.map((p, i) => {
    const x = t1 > t0 ? ((ts[i] - t0) / (t1 - t0)) * 100 : (i / (points.length - 1)) * 100;
    const y = 29 - (Math.max(0, Math.min(100, p.used_percent)) / 100) * 28;
    return x.toFixed(1) + "," + y.toFixed(1);
  }).join(" "));
  svg.append(line);
  const wrap = el("div", { class: "chart" });
  wrap.append(svg);
  return wrap;
}

/** Sets Enabled to the opposite of what the store holds; one request at a time per card. */
async function toggle(c) {
  if (c.busy) return;
  const want = !c.enabledInStore;
  c.busy = true;
  c.switchState = "updating";
  c.switchError.textContent = "";
  renderSwitch(c);
  const res = await api("PUT", "/api/accounts/" + encodeURIComponent(c.alias) + "/enabled", { enabled: want });
  c.busy = false;
  if (res.ok) {
    c.enabledInStore = res.data.account.enabled;
    c.switchState = c.enabledInStore ? "on" : "off";
  } else {
    c.switchState = "error";
    c.switchError.textContent = (res.data && res.data.message) || "the change failed (" + res.status + ")";
  }
  renderSwitch(c);
  refresh();
}

// ---- re-auth ------------------------------------------------------------------------

async function startReauth(c) {
  c.reauthButton.disabled = true;
  const res = await api("POST", "/api/accounts/" + encodeURIComponent(c.alias) + "/reauth");
  if (!res.ok && res.status !== 409) {
    c.reauth.hidden = false;
    c.reauth.replaceChildren(el("div", { class: "error-text" }, res.data ? res.data.message : "could not start"));
    c.reauthButton.disabled = false;
    return;
  }
  watchReauth(c);
}

async function watchReauth(c) {
  if (c.watching) return;
  c.watching = true;
  try {
    for (let i = 0; i < 3600; i++) {
      const res = await api("GET", "/api/accounts/" + encodeURIComponent(c.alias) + "/reauth");
      if (res.ok) renderReauth(c, res.data);
      if (!res.ok || res.data.state !== "in-progress") break;
      await new Promise(r => setTimeout(r, 1000));
    }
  } finally {
    c.watching = false;
    c.reauthButton.disabled = false;
  }
}

function renderReauth(c, r) {
  c.reauth.hidden = r.state === "idle";
  c.reauth.dataset.state = r.state;
  const state = el("span", { class: "badge" });
  setBadge(state, r.state);
  const parts = [el("div", {}, "Re-auth ", state)];
  if (r.url) parts.push(el("div", {}, "Open ", el("a", { href: r.url, target: "_blank", rel: "noopener noreferrer", "data-reauth-url": true }, r.url)));
  if (r.device_code) parts.push(el("div", {}, "and enter the code ", el("code", { "data-device-code": true }, r.device_code)));
  if (r.state === "in-progress" && !r.url) parts.push(el("div", { class: "muted" }, "starting the login in a container…"));
  if (r.awaiting_code) {
    // Kept across polls, so what is being typed is not lost.
    if (!c.codeForm) {
      const input = el("input", { type: "text", name: "code", autocomplete: "off", placeholder: "paste the code from the sign-in page", "aria-label": "sign-in code" });
      const err = el("div", { class: "error-text" });
      c.codeForm = el("form", { onsubmit: async (e) => {
        e.preventDefault();
        const res = await api("POST", "/api/accounts/" + encodeURIComponent(c.alias) + "/reauth/code", { code: input.value });
        err.textContent = res.ok ? "" : res.data.message;
        if (res.ok) { input.value = ""; c.codeForm = null; }
      } }, input, " ", el("button", { class: "primary", type: "submit" }, "Send code"), err);
    }
    parts.push(c.codeForm);
  } else {
    c.codeForm = null;
  }
  if (r.message) parts.push(el("div", { class: r.state === "error" ? "error-text" : "muted" }, r.message));
  if (r.state === "in-progress") parts.push(el("div", { class: "muted" }, "The current login stays in place until the new one is checked."));
  c.reauth.replaceChildren(...parts);
}

// ---- refresh ------------------------------------------------------------------------

async function refresh() {
  const res = await api("GET", "/api/accounts");
  const conn = document.getElementById("conn");
  if (!res.ok) {
    setBadge(conn, res.status === 0 ? "offline" : "error", res.status === 401 ? "no token" : res.status === 0 ? "offline" : "error");
    showNotice(res.status === 401 ? "Open the URL `moonauth dashboard` printed (it carries this start's token)." : res.data ? res.data.message : "");
    return;
  }
  setBadge(conn, "live");
  showNotice("");
  document.getElementById("revision").textContent = "store revision " + res.data.revision;
  const list = document.getElementById("accounts");
  const nodes = res.data.accounts.map(renderAccount);
  const seen = new Set(res.data.accounts.map(a => a.alias));
  for (const alias of [...cards.keys()]) if (!seen.has(alias)) cards.delete(alias);
  list.replaceChildren(...nodes);
  if (!res.data.accounts.length) list.replaceChildren(el("p", { class: "muted" }, "No accounts yet: `moonauth accounts add`."));
  for (const hook of refreshHooks) await hook(res.data);
  document.body.dataset.loaded = "true";
}

/** Parts of the page that refresh with the accounts (force, settings, decisions). */
const refreshHooks = [];

// ---- force -------------------------------------------------------------------------

const force = { busy: false, view: null, fetchedAt: 0 };

function renderForce(fleet) {
  const box = document.getElementById("force");
  document.getElementById("force-section").hidden = false;
  force.view = fleet.force;
  force.fetchedAt = Date.now();
  if (!force.select) {
    force.select = el("select", { id: "force-alias", "aria-label": "account to force" });
    force.duration = el("select", { id: "force-for", "aria-label": "for how long" },
      ["1h", "4h", "24h", "7d"].map(d => el("option", { value: d, selected: d === "24h" }, d)));
    force.button = el("button", { type: "button", class: "primary", id: "force-button", onclick: doForce }, "Force");
    force.clear = el("button", { type: "button", id: "force-clear", onclick: clearForce }, "Clear force");
    force.status = el("span", { id: "force-status" });
    force.error = el("span", { class: "error-text", id: "force-error", role: "alert" });
  }
  const chosen = force.select.value;
  force.select.replaceChildren(...fleet.accounts.map(a =>
    el("option", { value: a.alias, selected: a.alias === chosen }, a.alias + " (" + a.runtime + (a.eligible ? "" : ", not eligible") + ")")));
  force.button.disabled = force.busy;
  force.clear.disabled = force.busy || !fleet.force;
  tickForce();
  if (!box.childElementCount) {
    box.append(el("span", {}, "Always choose "), force.select, el("span", {}, " for "), force.duration, force.button, force.clear, force.status, force.error);
  }
}

function tickForce() {
  if (!force.status) return;
  const v = force.view;
  if (!v) { force.status.textContent = "Off: the strategy decides."; force.status.dataset.state = "off"; return; }
  const left = Math.max(0, v.seconds_left - Math.floor((Date.now() - force.fetchedAt) / 1000));
  const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), sec = left % 60;
  force.status.dataset.state = "on";
  force.status.textContent = "Forced: " + v.alias + " by " + v.forced_by + ", " + h + "h " + m + "m " + sec + "s left (until " + v.until + "; then " + v.replaced + ")";
}

async function doForce() {
  if (force.busy) return;
  force.busy = true; force.button.disabled = true; force.error.textContent = "";
  const res = await api("POST", "/api/force", { alias: force.select.value, for: force.duration.value });
  force.busy = false;
  if (!res.ok) force.error.textContent = res.data ? res.data.message : "the force failed";
  await refresh();
}

async function clearForce() {
  if (force.busy) return;
  force.busy = true; force.clear.disabled = true; force.error.textContent = "";
  const res = await api("POST", "/api/force/clear");
  force.busy = false;
  if (!res.ok) force.error.textContent = res.data ? res.data.message : "clearing failed";
  await refresh();
}

// ---- settings ----------------------------------------------------------------------

const settings = { current: {}, form: null, fields: {}, dirty: false };

const STRATEGIES = ["round-robin", "priority", "weighted-round-robin", "drain-soonest"];
const PRESETS = { balanced: "min weight 0.1, thresholds 10 / 30", conservative: "min weight 0.2, thresholds 20 / 50", aggressive: "min weight 0.05, thresholds 5 / 15" };

function thresholds() {
  const c = settings.current["threshold.critical"], l = settings.current["threshold.low"];
  return { critical: c ? c.value : 10, low: l ? l.value : 30 };
}

function settingField(key, input) {
  const source = el("span", { class: "src" });
  const error = el("div", { class: "error-text", id: "error-" + key.replace(/\./g, "-"), role: "alert" });
  input.name = key;
  input.id = "setting-" + key.replace(/\./g, "-");
  input.addEventListener("input", () => { settings.dirty = true; error.textContent = ""; input.removeAttribute("aria-invalid"); });
  settings.fields[key] = { input, source, error };
  return [el("label", { for: input.id }, key), input, el("div", {}, source, error)];
}

function buildSettingsForm(accounts) {
  const form = document.getElementById("settings");
  settings.fields = {};
  const rows = [
    settingField("strategy", el("select", {}, STRATEGIES.map(s => el("option", { value: s }, s)))),
    settingField("preset", el("select", {}, Object.entries(PRESETS).map(([p, what]) => el("option", { value: p }, p + " (" + what + ")")))),
    settingField("threshold.critical", el("input", { type: "text", inputmode: "numeric" })),
    settingField("threshold.low", el("input", { type: "text", inputmode: "numeric" })),
    ...accounts.map(a => settingField("weight." + a.alias, el("input", { type: "text", inputmode: "decimal" }))),
  ];
  const status = el("span", { class: "muted", id: "settings-status" });
  const save = el("button", { type: "submit", class: "primary", id: "settings-save" }, "Save");
  const reset = el("button", { type: "button", id: "settings-reset", onclick: resetSettings }, "Reset to defaults");
  form.replaceChildren(...rows.flat(), el("span", {}), el("div", {}, save, " ", reset), status);
  form.onsubmit = saveSettings;
  settings.status = status;
  settings.accountsKey = accounts.map(a => a.alias).join(",");
}

function fillSettings(report) {
  settings.current = {};
  for (const s of report.settings) settings.current[s.key] = s;
  for (const [key, f] of Object.entries(settings.fields)) {
    const s = settings.current[key];
    const value = s ? s.value : key.startsWith("weight.") ? 1 : "";
    if (!settings.dirty) f.input.value = String(value);
    f.source.textContent = s ? "from " + s.source : "default";
  }
}

async function renderSettings(fleet) {
  document.getElementById("settings-section").hidden = false;
  const key = fleet.accounts.map(a => a.alias).join(",");
  if (settings.accountsKey !== key) { buildSettingsForm(fleet.accounts); settings.dirty = false; }
  const res = await api("GET", "/api/settings");
  if (res.ok) fillSettings(res.data);
}

/** Sends the fields that differ from what is in effect; a refused value is shown at its field. */
async function saveSettings(e) {
  e.preventDefault();
  const body = {};
  for (const [key, f] of Object.entries(settings.fields)) {
    f.error.textContent = ""; f.input.removeAttribute("aria-invalid");
    const s = settings.current[key];
    const was = s ? String(s.value) : key.startsWith("weight.") ? "1" : "";
    if (f.input.value.trim() !== was) body[key] = f.input.value.trim();
  }
  if (!Object.keys(body).length) { settings.status.textContent = "nothing changed"; return; }
  settings.status.textContent = "saving…";
  const res = await api("PUT", "/api/settings", body);
  if (res.ok) {
    settings.dirty = false;
    settings.status.textContent = "saved";
    fillSettings(res.data);
    return;
  }
  settings.status.textContent = "";
  const field = res.data && res.data.details ? res.data.details.field : null;
  const f = settings.fields[field] || settings.fields[Object.keys(body)[0]];
  if (f) {
    f.error.textContent = res.data ? res.data.message : "refused";
    f.input.setAttribute("aria-invalid", "true");
  } else {
    settings.status.textContent = res.data ? res.data.message : "refused";
  }
}

async function resetSettings() {
  const res = await api("POST", "/api/settings/reset");
  settings.dirty = false;
  settings.status.textContent = res.ok ? "reset to defaults" : (res.data ? res.data.message : "reset failed");
  if (res.ok) fillSettings(res.data);
}

// ---- decisions ---------------------------------------------------------------------

async function renderDecisions() {
  const res = await api("GET", "/api/decisions?limit=30");
  if (!res.ok) return;
  document.getElementById("decisions-section").hidden = false;
  const list = document.getElementById("decisions");
  const items = res.data.decisions.slice().reverse().map(d => el("li", { "data-chosen": d.chosen || "" },
    el("strong", {}, d.chosen || "none"), " ", el("span", { class: "muted" }, d.runtime + " · " + d.strategy + " · " + d.by + " · " + relative(d.time)),
    d.fallback ? el("div", { class: "why" }, d.fallback) : null,
    d.candidates.length ? el("details", {}, el("summary", {}, d.candidates.length + " candidates"),
      el("ul", {}, d.candidates.map(c => el("li", {}, c.alias + ": " + (c.reason || ""))))) : null));
  list.replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "No decisions yet: `moonauth accounts pick` and `moonauth run` record them.")]));
}

refreshHooks.push(renderForce, renderSettings, renderDecisions);

document.addEventListener("DOMContentLoaded", () => {
  setInterval(tickForce, 1000);
  refresh();
  setInterval(refresh, POLL_MS);
});
