// flowguard dashboard: plain JavaScript, no build step, no request to any
// other origin. Pages: overview, findings, finding, query, blocks and audit.
"use strict";

const SEED_QUERY = 'filter action = "REJECT"\n| stats count() by srcaddr\n| filter count >= 2\n| sort count desc';
const RANGES = [["5m", "5 minutes"], ["15m", "15 minutes"], ["1h", "1 hour"], ["6h", "6 hours"], ["24h", "24 hours"], ["7d", "7 days"]];
// The daemon keeps the traffic per minute: bins are whole minutes.
const BINS = { "5m": "1m", "15m": "1m", "1h": "1m", "6h": "5m", "24h": "15m", "7d": "2h" };
const POLL_MS = 5000;       // polling while the event stream is down
const LIVE_POLL_MS = 60000; // a safety reload while it is up

const main = document.getElementById("main");
const statusEl = document.getElementById("status");
let timer = null;
let range = sessionStorage.getItem("fg-range") || "15m";

// el builds an element: el("td", {class: "num"}, "12").
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k !== undefined && k !== null) e.append(k instanceof Node ? k : String(k));
  return e;
}
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : String(k));
  return e;
}

function say(msg, error) {
  statusEl.textContent = msg || "";
  statusEl.className = error ? "error" : "";
}

// ---- live updates: server-sent events (GET /api/v1/events), polling
// when they are not available. Pages subscribe with onLive(fn).

const live = { up: false, listeners: new Set() };
function startLive() {
  if (!window.EventSource) return;
  const es = new EventSource("/api/v1/events");
  es.onopen = () => { live.up = true; };
  es.onerror = () => { live.up = false; }; // the browser reconnects by itself
  for (const type of ["finding", "block", "traffic", "sources"]) {
    es.addEventListener(type, (ev) => {
      live.up = true;
      let data = null;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      for (const fn of live.listeners) fn(type, data);
    });
  }
}
function onLive(fn) { live.listeners.clear(); live.listeners.add(fn); }

function token() { return sessionStorage.getItem("fg-token") || ""; }
document.getElementById("token").value = token();
document.getElementById("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("fg-token", document.getElementById("token").value.trim());
  say("Token saved for this tab.");
});

// api calls the HTTP API; requests that change state carry the token.
async function api(path, opts) {
  opts = opts || {};
  const headers = { "Accept": "application/json" };
  if (opts.method === "POST") {
    headers["Content-Type"] = "application/json";
    if (token()) headers["Authorization"] = "Bearer " + token();
  }
  const res = await fetch(path, { method: opts.method || "GET", headers, body: opts.body ? JSON.stringify(opts.body) : undefined });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!res.ok) {
    const msg = (data && data.error) || (res.status + " " + res.statusText);
    throw new Error(res.status === 401 ? "The API token is missing or wrong: paste it in the API token field (the daemon logs where it is). " + msg : msg);
  }
  return data;
}

const num = (v) => (typeof v === "number" ? v.toLocaleString("en-US", { maximumFractionDigits: 2 }) : v);
const level = (s) => (s >= 7 ? "High" : s >= 4 ? "Medium" : "Low");
function parseTime(v) {
  if (typeof v === "number") return new Date(v * 1000);
  if (typeof v !== "string") return null;
  const d = new Date(/^\d{4}-\d\d-\d\d \d/.test(v) ? v.replace(" ", "T") + "Z" : v);
  return isNaN(d) ? null : d;
}
const hhmm = (d) => d.toISOString().slice(11, 19);
function ago(d) {
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (s < 0) return "in " + dur(-s);
  return dur(s) + " ago";
}
function dur(s) {
  if (s < 90) return s + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}

// table renders rows (objects) with the given columns.
function table(caption, rows, cols, opts) {
  opts = opts || {};
  cols = cols || (rows.length ? Object.keys(rows[0]).map((k) => ({ key: k, label: k })) : []);
  if (!rows.length) return el("p", { class: "muted" }, opts.empty || "Nothing in this period.");
  const max = {};
  for (const c of cols) if (c.bar) max[c.key] = Math.max(1, ...rows.map((r) => Number(r[c.key]) || 0));
  return el("table", {},
    caption ? el("caption", { class: "muted" }, caption) : null,
    el("thead", {}, el("tr", {}, cols.map((c) => el("th", { scope: "col", class: c.num ? "num" : null }, c.label)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, cols.map((c) => {
      const v = c.render ? c.render(r) : r[c.key];
      if (c.bar) {
        const w = Math.round(80 * (Number(r[c.key]) || 0) / max[c.key]);
        return el("td", { class: "num" }, el("span", { class: "bar " + (c.bar === "reject" ? "reject" : ""), style: null, "data-w": w }), num(v));
      }
      return el("td", { class: c.num ? "num" : null }, v instanceof Node ? v : num(v === undefined ? "" : v));
    })))));
}
// Bars get their width after insertion: inline style attributes are
// refused by the Content-Security-Policy, the CSSOM is not.
function sizeBars(root) {
  for (const b of root.querySelectorAll(".bar[data-w]")) b.style.width = b.dataset.w + "px";
}

// lineChart draws series [{name, cls, points: [[Date, value]]}] as an SVG
// with axes; every point is a circle carrying its value.
function lineChart(title, series, unit, wide) {
  const W = wide ? 1200 : 640, H = 200, L = 56, R = 10, T = 10, B = 24;
  const all = series.flatMap((s) => s.points);
  const root = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  root.append(svg("title", {}, title));
  if (!all.length) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no data in this period"));
    return root;
  }
  const t0 = Math.min(...all.map((p) => p[0].getTime())), t1 = Math.max(...all.map((p) => p[0].getTime()));
  root.dataset.start = t0; // the first point's time, for tests and tools
  const vmax = Math.max(...all.map((p) => p[1]), 0) || 1;
  const x = (t) => L + (t1 === t0 ? (W - L - R) / 2 : (t - t0) / (t1 - t0) * (W - L - R));
  const y = (v) => T + (1 - v / vmax) * (H - T - B);
  root.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  root.append(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  for (const f of [0, 0.5, 1]) {
    root.append(svg("text", { x: L - 4, y: y(vmax * f) + 4, "text-anchor": "end" }, num(+(vmax * f).toPrecision(3)) + (unit || "")));
  }
  root.append(svg("text", { x: L, y: H - 6 }, hhmm(new Date(t0))));
  root.append(svg("text", { x: W - R, y: H - 6, "text-anchor": "end" }, hhmm(new Date(t1))));
  for (const s of series) {
    const pts = s.points.map((p) => `${x(p[0].getTime()).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    root.append(svg("polyline", { class: s.cls, points: pts, "data-series": s.name }));
    for (const p of s.points) {
      const c = svg("circle", { cx: x(p[0].getTime()).toFixed(1), cy: y(p[1]).toFixed(1), r: 2.5, class: "pt " + s.cls, "data-value": p[1], fill: "currentColor" });
      c.append(svg("title", {}, `${s.name} ${hhmm(p[0])}: ${num(p[1])}${unit || ""}`));
      root.append(c);
    }
  }
  return root;
}

function card(title, ...kids) { return el("section", { class: "card" }, el("h3", {}, title), ...kids); }

function rangePicker(onchange) {
  const sel = el("select", { id: "range", onchange: (e) => { range = e.target.value; sessionStorage.setItem("fg-range", range); onchange(); } },
    RANGES.map(([v, l]) => el("option", { value: v, selected: v === range }, l)));
  return el("p", {}, el("label", { for: "range", class: "inline" }, "Time range: last"), sel);
}

// ---- overview

async function overview() {
  const body = el("div", { id: "overview-body" });
  main.replaceChildren(el("h2", {}, "Overview"), rangePicker(() => load()), body);
  async function load() {
    clearTimeout(timer);
    const bin = BINS[range];
    try {
      const [tabs, findings, blocks, wouldBlock, sources] = await Promise.all([
        api(`/api/v1/tables?since=${range}&bin=${bin}&name=traffic&name=rejected_sources&name=top_talkers&name=dst_ports&name=source_records`),
        api(`/api/v1/findings?archived=no&since=${range}`),
        api("/api/v1/blocks"),
        api(`/api/v1/audit?action=block-dry-run&since=${range}&limit=200`),
        api("/api/v1/sources"),
      ]);
      render(tabs, findings, blocks, wouldBlock, sources, bin);
      say("Updated " + hhmm(new Date()) + " UTC; " + (live.up ? "live updates on." : "next update in " + POLL_MS / 1000 + " s."));
    } catch (e) {
      say("Cannot load the overview: " + e.message, true);
    }
    if (location.hash === "" || location.hash === "#/") timer = setTimeout(load, live.up ? LIVE_POLL_MS : POLL_MS);
  }
  // Live: a finding, a block or new traffic reloads the overview (at
  // most once a second); the sources' status redraws their table.
  let soon = null;
  onLive((type, data) => {
    if (type === "sources") { lastSources = data; drawSources(); return; }
    if (soon) return;
    soon = setTimeout(() => { soon = null; load(); }, 1000);
  });
  let lastSources = [], lastRecords = [];
  const sourcesBox = el("div", { id: "sources-box" });
  function drawSources() {
    const recs = {};
    for (const r of lastRecords) recs[r.source] = r;
    sourcesBox.replaceChildren(table(null, lastSources, [
      { key: "name", label: "source" }, { key: "type", label: "type" },
      { key: "connected", label: "health", render: (s) => (s.last_error ? "error: " + s.last_error : s.connected ? "connected" : "not connected") },
      { key: "lag_seconds", label: "lag (s)", num: true },
      { key: "records", label: "records in period", num: true, render: (s) => (recs[s.name] ? recs[s.name].records : 0) },
      { key: "rejects", label: "rejected", num: true, render: (s) => (recs[s.name] ? recs[s.name].rejects : 0) }]));
  }
  function render(tabs, findings, blocks, wouldBlock, sources, bin) {
    lastSources = sources;
    lastRecords = tabs.tables.source_records || [];
    drawSources();
    const binS = parseDuration(bin);
    const byTime = new Map();
    for (const r of tabs.tables.traffic) {
      const k = r.time;
      const e = byTime.get(k) || { t: parseTime(k), total: 0, rejected: 0 };
      e.total += r.records;
      if (r.action === "REJECT") e.rejected += r.records;
      byTime.set(k, e);
    }
    // The current bin is still filling: leave it out.
    const pts = [...byTime.values()].filter((e) => e.t && e.t.getTime() + binS * 1000 <= Date.now()).sort((a, b) => a.t - b.t);
    const total = pts.reduce((s, e) => s + e.total, 0), rej = pts.reduce((s, e) => s + e.rejected, 0);
    const sev = { High: 0, Medium: 0, Low: 0 };
    for (const f of findings) sev[level(f.severity)]++;
    const kpis = el("div", { class: "kpis" },
      el("div", { class: "kpi" }, "Records", el("b", { id: "kpi-records" }, num(total))),
      el("div", { class: "kpi" }, "Rejected", el("b", {}, total ? (100 * rej / total).toFixed(1) + " %" : "–")),
      el("div", { class: "kpi" }, "Active findings", el("b", { id: "kpi-findings" }, findings.length)),
      ["High", "Medium", "Low"].map((l) => el("div", { class: "kpi" }, el("span", { class: "sev " + l }, l), el("b", {}, sev[l]))),
      el("div", { class: "kpi" }, "Blocks in force", el("b", {}, blocks.length)),
      el("div", { class: "kpi" }, "Would block (dry run)", el("b", { id: "kpi-dryrun" }, wouldBlock.length)));
    const grid = el("div", { class: "grid" },
      el("section", { class: "card" }, el("h3", {}, "Records per second"),
        lineChart("Records per second over time", [{ name: "records/s", cls: "records", points: pts.map((e) => [e.t, e.total / binS]) }])),
      el("section", { class: "card" }, el("h3", {}, "Rejected share"),
        lineChart("Share of rejected records over time", [{ name: "rejected", cls: "rejected", points: pts.map((e) => [e.t, e.total ? 100 * e.rejected / e.total : 0]) }], " %")),
      el("section", { class: "card wide" }, el("h3", {}, "Active findings"), findingsTable(sortFindings(findings).slice(0, 12))),
      el("section", { class: "card wide" }, el("h3", {}, "Blocks"), blocksTable(blocks, wouldBlock)),
      card("Top rejected sources" + approx(tabs, "rejected_sources"), table(null, tabs.tables.rejected_sources.slice(0, 10), [
        { key: "srcAddr", label: "source" }, { key: "rejects", label: "rejects", num: true, bar: "reject" }, { key: "ports", label: "ports", num: true }])),
      card("Top talkers" + approx(tabs, "top_talkers"), table(null, tabs.tables.top_talkers.slice(0, 10), [
        { key: "srcAddr", label: "source" }, { key: "dstAddr", label: "destination" },
        { key: "bytes", label: "bytes", num: true, bar: true }, { key: "flows", label: "flows", num: true }])),
      card("Destination ports" + approx(tabs, "dst_ports"), table(null, tabs.tables.dst_ports.slice(0, 10), [
        { key: "dstPort", label: "port" }, { key: "flows", label: "flows", num: true, bar: true }, { key: "bytes", label: "bytes", num: true }])),
      card("Sources", sourcesBox));
    body.replaceChildren(kpis, grid);
    sizeBars(body);
  }
  load();
}

// approx marks a top table the daemon keeps approximately (the first
// keys of each minute).
function approx(tabs, name) { return (tabs.approximate || []).includes(name) ? " (approx.)" : ""; }

function parseDuration(s) {
  const m = /^(\d+)(s|m|h)$/.exec(s);
  return m ? Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2]] : 60;
}

function sortFindings(fs) {
  return fs.slice().sort((a, b) => b.severity - a.severity || new Date(b.last_seen) - new Date(a.last_seen));
}

function findingsTable(fs) {
  return table(null, fs, [
    { key: "severity", label: "severity", render: (f) => el("span", { class: "sev " + level(f.severity) }, level(f.severity) + " " + f.severity.toFixed(1)) },
    { key: "type", label: "type" },
    { key: "title", label: "finding", render: (f) => el("a", { href: "#/finding/" + encodeURIComponent(f.id), class: "finding-link" }, f.title) },
    { key: "count", label: "count", num: true },
    { key: "last_seen", label: "last seen", render: (f) => ago(new Date(f.last_seen)) }], { empty: "No active finding in this period." });
}

function blocksTable(blocks, wouldBlock) {
  const rows = blocks.map((b) => ({ prefix: b.prefix, how: b.target + (b.rule_number ? " rule " + b.rule_number : ""), state: b.state, finding: b.finding_id,
    left: b.expires ? dur(Math.max(0, Math.round((new Date(b.expires) - Date.now()) / 1000))) : "" }));
  for (const a of wouldBlock) {
    const d = a.detail || {};
    rows.push({ prefix: a.subject, how: (d.targets || []).join(", ") || "dry run", state: "dry run (would block)",
      left: "none placed", finding: a.finding_id });
  }
  return table(null, rows, [{ key: "prefix", label: "address" }, { key: "how", label: "where" }, { key: "state", label: "state" }, { key: "left", label: "time left" },
    { key: "finding", label: "finding", render: (r) => (r.finding ? el("a", { href: "#/finding/" + encodeURIComponent(r.finding) }, r.finding.slice(0, 12)) : "") }],
    { empty: "Nothing blocked in this period." });
}

// ---- findings list

async function findingsPage() {
  const body = el("div");
  main.replaceChildren(el("h2", {}, "Findings"), rangePicker(() => load()), body);
  async function load() {
    try {
      const fs = await api(`/api/v1/findings?archived=all&since=${range}`);
      body.replaceChildren(table(null, fs, [
        { key: "severity", label: "severity", render: (f) => el("span", { class: "sev " + level(f.severity) }, level(f.severity) + " " + f.severity.toFixed(1)) },
        { key: "type", label: "type" },
        { key: "title", label: "finding", render: (f) => el("a", { href: "#/finding/" + encodeURIComponent(f.id), class: "finding-link" }, f.title) },
        { key: "count", label: "count", num: true },
        { key: "archived", label: "archived", render: (f) => (f.archived ? "yes" : "no") },
        { key: "last_seen", label: "last seen", render: (f) => ago(new Date(f.last_seen)) }], { empty: "No finding in this period." }));
      say("");
    } catch (e) { say("Cannot load the findings: " + e.message, true); }
  }
  load();
}

// ---- one finding

// RULES maps a finding type to its section of the configuration's
// detectors: (docs/detection.md describes each rule).
const RULES = [
  [/^Recon:EC2\/Portscan$/, "portscan"], [/^Recon:EC2\/PortProbeUnprotectedPort$/, "port_probe"],
  [/BruteForce$/, "brute_force"], [/^Impact:EC2\/InboundFlood$/, "inbound_flood"],
  [/^Backdoor:EC2\/DenialOfService/, "denial_of_service"], [/^Exfiltration:/, "exfiltration"],
  [/^Behavior:EC2\/NetworkPortUnusual$/, "network_port_unusual"], [/MaliciousIPCaller/, "threat_list"],
  [/^Policy:EC2\/UnexpectedSource$/, "unexpected_source"], [/^Policy:EC2\/StatelessReturnTrafficRejected$/, "return_traffic"],
  [/^Recon:EC2\/RepeatedReject$/, "repeated_reject"],
];

function thresholds(type, settings) {
  const r = RULES.find(([re]) => re.test(type));
  if (!r || !settings || !settings[r[1]]) return null;
  const rows = Object.entries(settings[r[1]]).filter(([k]) => k !== "enabled")
    .map(([k, v]) => ({ k: r[1] + "." + k, v: Array.isArray(v) ? v.join(", ") : v }));
  rows.push({ k: "window", v: settings.window }, { k: "allowed_lateness", v: settings.allowed_lateness });
  return rows;
}

async function findingPage(id) {
  onLive((type, data) => {
    if (type === "finding" && data.id === id && location.hash === "#/finding/" + encodeURIComponent(id)) say("This finding was updated: " + num(data.count) + " records or events now. Reload the page to see it.");
  });
  main.replaceChildren(el("h2", {}, "Finding"), el("p", { class: "muted" }, "Loading…"));
  let f, settings = null;
  try { f = await api("/api/v1/findings/" + encodeURIComponent(id)); } catch (e) { say("Cannot load the finding: " + e.message, true); return; }
  try { settings = await api("/api/v1/detectors"); } catch (e) { settings = null; }
  const ex = f.explanation || {};
  const state = el("span", { id: "finding-state" }, f.archived ? "archived" : "active");
  const act = (path, body, done) => async (ev) => {
    ev.target.disabled = true;
    try {
      const r = await api("/api/v1/findings/" + encodeURIComponent(f.id) + path, { method: "POST", body });
      say(done(r));
      findingPage(f.id);
    } catch (e) { say(e.message, true); ev.target.disabled = false; }
  };
  const buttons = el("div", { class: "actions" },
    f.archived
      ? el("button", { id: "unarchive", onclick: act("/unarchive", null, () => "Brought back.") }, "Unarchive")
      : el("button", { id: "archive", class: "primary", onclick: act("/archive", null, () => "Archived.") }, "Archive"),
    el("button", { id: "useful", onclick: act("/feedback", { value: "USEFUL" }, () => "Feedback recorded: useful."), "aria-pressed": f.feedback === "USEFUL" ? "true" : "false" }, "Useful"),
    el("button", { id: "not-useful", onclick: act("/feedback", { value: "NOT_USEFUL" }, () => "Feedback recorded: not useful."), "aria-pressed": f.feedback === "NOT_USEFUL" ? "true" : "false" }, "Not useful"),
    el("button", { id: "suppress", onclick: act("/suppress", null, (r) => "Suppression rule " + r.rule.name + " added; it archived " + r.archived + " finding(s).") }, "Suppress this type from this actor"));
  const ports = (f.target.ports || []).join(", ");
  const facts = el("dl", { class: "facts" },
    el("dt", {}, "type"), el("dd", {}, f.type),
    el("dt", {}, "severity"), el("dd", {}, el("span", { class: "sev " + level(f.severity) }, level(f.severity) + " " + f.severity.toFixed(1))),
    el("dt", {}, "state"), el("dd", {}, state, f.feedback ? " · feedback " + f.feedback : ""),
    el("dt", {}, "actor"), el("dd", {}, (f.actor.ip || f.actor.user || "–") + (f.actor.direction ? " (" + f.actor.direction + ")" : "")),
    el("dt", {}, "target"), el("dd", {}, (f.target.ip || "many hosts") + (f.target.interface_id ? " on " + f.target.interface_id : "") + (ports ? " ports " + ports : "")),
    el("dt", {}, "seen"), el("dd", {}, `${f.first_seen} to ${f.last_seen}, ${num(f.count)} records or events`),
    el("dt", {}, "rule"), el("dd", { id: "finding-rule" }, ex.rule || f.description || "the " + f.type + " rule (docs/detection.md)"),
    el("dt", {}, "id"), el("dd", {}, el("code", {}, f.id)));
  const evidence = table(null, Object.entries(f.evidence || {}).sort().map(([k, v]) => ({ k, v: typeof v === "object" ? JSON.stringify(v) : v })),
    [{ key: "k", label: "evidence" }, { key: "v", label: "value", num: true }]);
  const timelineBox = el("div", {}, el("p", { class: "muted" }, "Loading the actor's flows…"));
  const samplesBox = el("div");
  main.replaceChildren(el("h2", {}, f.title), buttons, el("div", { class: "grid" },
    card("What and why", facts), card("Evidence (the numbers the detector decided on)", evidence,
      el("h3", {}, ex.thresholds ? "Thresholds of the rule when it fired" : "Thresholds in force"),
      table(null, ex.thresholds ? Object.entries(ex.thresholds).sort().map(([k, v]) => ({ k, v: Array.isArray(v) ? v.join(", ") : v })) : thresholds(f.type, settings) || [],
        [{ key: "k", label: "setting" }, { key: "v", label: "value", num: true }],
        { empty: "This finding type has no threshold in the detectors' settings." })),
    el("section", { class: "card wide" }, el("h3", {}, "The actor's flows over time"), timelineBox),
    el("section", { class: "card wide", id: "explanation" }, el("h3", {}, "Records the detector kept"),
      table(null, (ex.samples || []).map((r) => ({ where: r.source + (r.line ? ":" + r.line : ""), record: r.text })),
        [{ key: "where", label: "where" }, { key: "record", label: "record", render: (r) => el("code", {}, r.record) }],
        { empty: "No sample record was kept for this finding (it was found before flowguard recorded explanations, or from an event that is not a flow record)." }),
      el("details", {}, el("summary", {}, "As flowguard detect --explain prints it"), el("pre", { id: "explain-text" }, ex.text || ""))),
    el("section", { class: "card wide" }, el("h3", {}, "The actor's latest records"), samplesBox),
    el("section", { class: "card wide" }, el("h3", {}, "History"), table(null, (f.history || []).map((h) => ({ ...h })), null, { empty: "No history." }))));
  try {
    const fl = await api("/api/v1/findings/" + encodeURIComponent(f.id) + "/flows");
    const series = {};
    for (const r of fl.timeline) (series[r.action || "other"] = series[r.action || "other"] || []).push([parseTime(r.time), r.flows]);
    timelineBox.replaceChildren(lineChart("The actor's flows over time", Object.entries(series).map(([a, pts]) => ({
      name: a, cls: a === "REJECT" ? "rejected" : "records", points: pts.filter((p) => p[0]) })), "", true),
    el("p", { class: "legend" }, el("span", { class: "k1" }, "── accepted"), el("span", { class: "k2" }, "- - rejected")));
    samplesBox.replaceChildren(table(null, fl.samples, null, { empty: "The records are no longer kept (followed files, and the recent data of stream sources)." }));
  } catch (e) { timelineBox.replaceChildren(el("p", { class: "muted" }, "Cannot load the flows: " + e.message)); }
}

// ---- query

function queryPage() {
  const ta = el("textarea", { id: "query-text", "aria-label": "Logs Insights query", spellcheck: "false" }, sessionStorage.getItem("fg-query") || SEED_QUERY);
  const since = el("select", { id: "query-since" }, RANGES.map(([v, l]) => el("option", { value: v, selected: v === "1h" }, l)));
  const out = el("div", { id: "query-result" });
  const run = async () => {
    sessionStorage.setItem("fg-query", ta.value);
    out.replaceChildren(el("p", { class: "muted" }, "Running…"));
    try {
      const rows = await api("/api/v1/query", { method: "POST", body: { query: ta.value, since: since.value } });
      out.replaceChildren(queryChart(rows) || "", el("p", { class: "muted" }, rows.length + " row(s)"), table(null, rows, null, { empty: "No rows." }));
      sizeBars(out);
      say("");
    } catch (e) { out.replaceChildren(); say("Query failed: " + e.message, true); }
  };
  main.replaceChildren(el("h2", {}, "Query"),
    el("p", {}, "CloudWatch Logs Insights queries over the recent records: the followed files, and the data stream sources delivered lately. ",
      el("button", { id: "seed", onclick: () => { ta.value = SEED_QUERY; run(); } }, "Run the classic \u201crejected twice or more\u201d query"),
      " ", el("button", { onclick: () => { ta.value = "filter action = \"REJECT\"\n| stats count(*) as rejects by bin(1m)"; run(); } }, "Rejects per minute")),
    el("label", { for: "query-text" }, "Query"), ta,
    el("div", { class: "actions" }, el("label", { for: "query-since", class: "inline" }, "over the last"), since,
      el("button", { id: "run-query", class: "primary", onclick: run }, "Run")),
    out);
  ta.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run(); });
}

// queryChart draws a stats … by bin() result: the time column and each
// numeric column as a line.
function queryChart(rows) {
  if (!rows.length) return null;
  const keys = Object.keys(rows[0]);
  const tcol = keys.find((k) => /^bin\(/i.test(k) || parseTime(rows[0][k]) && typeof rows[0][k] === "string" && /^\d{4}-/.test(rows[0][k]));
  if (!tcol) return null;
  const ncols = keys.filter((k) => k !== tcol && typeof rows[0][k] === "number");
  if (!ncols.length) return null;
  const series = ncols.map((k, i) => ({ name: k, cls: /reject/i.test(k) || (i && !ncols.some((c) => /reject/i.test(c))) ? "rejected" : "records",
    points: rows.map((r) => [parseTime(r[tcol]), r[k]]).filter((p) => p[0]).sort((a, b) => a[0] - b[0]) }));
  return el("section", { class: "card" }, el("h3", {}, ncols.join(", ") + " by " + tcol), lineChart("Query result over time", series, "", true));
}

// ---- blocks and audit

async function blocksPage() {
  main.replaceChildren(el("h2", {}, "Blocks and audit"), el("p", { class: "muted" }, "Loading…"));
  try {
    const [blocks, audit] = await Promise.all([api("/api/v1/blocks?state=all"), api("/api/v1/audit?limit=300")]);
    const unblock = (ip) => async (ev) => {
      ev.target.disabled = true;
      try {
        const r = await api("/api/v1/blocks/" + encodeURIComponent(ip) + "/unblock", { method: "POST", body: { reason: "from the dashboard", by: "dashboard" } });
        say(`Marked ${r.marked.length} block(s) of ${r.prefix} for removal.`);
        blocksPage();
      } catch (e) { say(e.message, true); ev.target.disabled = false; }
    };
    const wouldBlock = audit.filter((a) => a.action === "block-dry-run");
    main.replaceChildren(el("h2", {}, "Blocks and audit"),
      el("section", { class: "card" }, el("h3", {}, "Blocks"), table(null, blocks, [
        { key: "prefix", label: "address" }, { key: "target", label: "route" }, { key: "state", label: "state" },
        { key: "finding_id", label: "finding", render: (b) => (b.finding_id ? el("a", { href: "#/finding/" + b.finding_id }, b.finding_id.slice(0, 12)) : "") },
        { key: "expires", label: "until" },
        { key: "act", label: "", render: (b) => (["active", "pending"].includes(b.state) ? el("button", { onclick: unblock(b.prefix), "aria-label": "Unblock " + b.prefix }, "Unblock") : "") }],
      { empty: "No block recorded. In dry-run mode flowguard only records what it would block (below)." })),
      el("section", { class: "card" }, el("h3", {}, "Would block (dry run)"), table(null, wouldBlock.map((a) => ({ time: a.time, address: a.subject, finding: a.finding_id, detail: JSON.stringify(a.detail) })), null,
        { empty: "Nothing." })),
      el("section", { class: "card" }, el("h3", {}, "Audit trail (latest first)"), table(null, audit.map((a) => ({ time: a.time, action: a.action, subject: a.subject || "", finding: a.finding_id || "", detail: a.detail ? JSON.stringify(a.detail) : "" })))));
    say("");
  } catch (e) { say("Cannot load blocks: " + e.message, true); }
}

// ---- routing

function route() {
  clearTimeout(timer);
  onLive(() => {});
  const h = location.hash.replace(/^#/, "") || "/";
  let page = "overview";
  if (h.startsWith("/finding/")) { page = "findings"; findingPage(decodeURIComponent(h.slice(9))); }
  else if (h === "/findings") { page = "findings"; findingsPage(); }
  else if (h === "/query") { page = "query"; queryPage(); }
  else if (h === "/blocks") { page = "blocks"; blocksPage(); }
  else overview();
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === page) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
}
window.addEventListener("hashchange", route);
startLive();
route();
