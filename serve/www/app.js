// The sbx serve dashboard. Everything a sandbox controls (host name,
// labels, log lines, command lines, audit fields) is put in the page with textContent,
// never as markup. The session is an HttpOnly cookie; this script only
// holds the CSRF token the server gave it, which it sends back in
// X-SBX-CSRF with every request. Kill and extend are the API's own
// DELETE and PATCH /api/v3/sandbox/<id>.
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = null;
let source = null;
let last = null;        // the last event: { now_ms, sandboxes, detail }
let skew = 0;           // server clock - our clock, ms

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function show(section) {
  for (const s of ["signin", "list", "sandbox"]) $(s).hidden = s !== section;
  $("signout").hidden = section === "signin";
}

function duration(s) {
  if (s < 0) s = 0;
  s = Math.floor(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(sec).padStart(2, "0")}s`;
  return `${sec}s`;
}

const nowS = () => (Date.now() + skew) / 1000;
const leftText = (ends) => (ends === null ? "session" : duration(ends - nowS()));
const mib = (kib) => (kib === null || kib === undefined || kib < 0 ? "–" : `${(kib / 1024).toFixed(0)} MiB`);

async function api(method, path, body) {
  const opts = { method, headers: { "X-SBX-CSRF": csrf || "" }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch { /* no body */ }
  if (!r.ok) throw new Error((data && data.message) || `${method} ${path}: ${r.status}`);
  return data;
}

// ---- sign-in ----

async function start() {
  try {
    csrf = (await api("GET", "/dashboard/api/session")).csrf;
  } catch {
    csrf = null;
  }
  route();
}

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("signin-error").textContent = "";
  try {
    const r = await fetch("/dashboard/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: $("token").value }),
      credentials: "same-origin",
    });
    const data = await r.json();
    if (!r.ok) throw new Error(data.message || "refused");
    csrf = data.csrf;
    $("token").value = "";
    route();
  } catch (e) {
    $("signin-error").textContent = `Sign-in failed: ${e.message}`;
  }
});

$("signout").addEventListener("click", async () => {
  try { await api("POST", "/dashboard/api/logout", {}); } catch { /* gone anyway */ }
  csrf = null;
  route();
});

// ---- routing: #/ the list, #/sandbox/<id> one sandbox ----

function route() {
  if (source) source.close();
  source = null;
  last = null;
  if (!csrf) {
    show("signin");
    $("where").textContent = "";
    return;
  }
  const m = location.hash.match(/^#\/sandbox\/([a-z0-9_]+)$/);
  const id = m ? m[1] : null;
  show(id ? "sandbox" : "list");
  $("where").textContent = id ? id : "sandboxes";
  delete document.body.dataset.listReady;
  delete document.body.dataset.sandboxReady;
  if (id) {
    // Nothing of the sandbox shown before stays on the page.
    $("sb-id").textContent = id;
    $("sb-gone").hidden = true;
    $("sb-msg").textContent = "";
    $("sb-state").textContent = "";
    $("sb-left").textContent = "";
    $("sb-left").dataset.ends = "";
    $("sb-host").textContent = "";
    for (const e of ["sb-labels", "sb-config", "sb-ps", "sb-exposures", "sb-egress"]) $(e).replaceChildren();
    $("sb-console").textContent = "";
    $("sb-ps-error").textContent = "";
    for (const c of ["plot-mem", "plot-cpu"]) plot($(c), [], 1, "");
  }
  source = new EventSource(id ? `/dashboard/api/events?id=${encodeURIComponent(id)}` : "/dashboard/api/events");
  source.onmessage = (ev) => {
    last = JSON.parse(ev.data);
    skew = last.now_ms - Date.now();
    if (id) renderSandbox(last.detail, last.sandboxes.find((s) => s.id === id));
    else renderList();
  };
  source.onerror = () => {
    $("live").textContent = "reconnecting…";
    // Refused (signed out, not this token's sandbox): ask again later.
    if (source && source.readyState === EventSource.CLOSED) {
      source = null;
      if (id) $("sb-gone").hidden = false;
      setTimeout(start, 3000);
    }
  };
}
window.addEventListener("hashchange", route);
$("home").addEventListener("click", (ev) => { ev.preventDefault(); location.hash = "#/"; });

// ---- the list ----

function labelsList(labels) {
  const ul = el("ul", null, "labels");
  for (const [k, v] of Object.entries(labels || {})) ul.append(el("li", `${k}=${v}`, "label"));
  return ul;
}

function matches(sb, filter) {
  if (!filter) return true;
  const labels = sb.labels || {};
  const eq = filter.indexOf("=");
  if (eq > 0) {
    const k = filter.slice(0, eq).trim(), v = filter.slice(eq + 1).trim();
    return Object.prototype.hasOwnProperty.call(labels, k) && labels[k] === v;
  }
  const words = [sb.id, sb.state, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)];
  return words.some((w) => w.toLowerCase().includes(filter.toLowerCase()));
}

const sorters = {
  age: (a, b) => b.created - a.created || a.id.localeCompare(b.id),
  id: (a, b) => a.id.localeCompare(b.id),
  memory: (a, b) => b.rss_kib - a.rss_kib || a.id.localeCompare(b.id),
  left: (a, b) => (a.ends ?? Infinity) - (b.ends ?? Infinity) || a.id.localeCompare(b.id),
};

function renderList() {
  if (!last) return;
  const filter = $("filter").value.trim();
  const all = last.sandboxes;
  const shown = all.filter((s) => matches(s, filter)).sort(sorters[$("sort").value]);
  const rows = [];
  for (const s of shown) {
    const tr = el("tr");
    tr.dataset.id = s.id;
    const td = el("td", null, "id");
    const a = el("a", s.id);
    a.href = `#/sandbox/${s.id}`;
    td.append(a);
    const mem = el("td", `${mib(s.guest_kib)} guest · ${mib(s.rss_kib)} host / ${s.memory_mib} MiB`);
    const left = el("td", leftText(s.ends), "left");
    left.dataset.ends = s.ends === null ? "" : s.ends;
    const labels = el("td");
    labels.append(labelsList(s.labels));
    tr.append(td, el("td", s.state), el("td", duration(nowS() - s.created)), mem, left, labels);
    rows.push(tr);
  }
  $("rows").replaceChildren(...rows);
  $("count").textContent = filter ? `${shown.length} of ${all.length} sandboxes` : `${all.length} sandbox${all.length === 1 ? "" : "es"}`;
  $("live").textContent = "live";
  if (!document.body.dataset.listReady) {
    // The first list of this view is on screen once the frame after the one
    // that painted it begins: a mark the benchmark reads (bench/dashboard.sh).
    requestAnimationFrame(() => requestAnimationFrame(() => performance.mark("sbx-list-painted")));
  }
  document.body.dataset.listReady = "1";
}
$("filter").addEventListener("input", renderList);
$("sort").addEventListener("change", renderList);

// Time left counts down between events too.
setInterval(() => {
  for (const td of document.querySelectorAll("td.left")) {
    if (td.dataset.ends) td.textContent = leftText(Number(td.dataset.ends));
  }
  if (!$("sandbox").hidden && $("sb-left").dataset.ends) {
    $("sb-left").textContent = leftText(Number($("sb-left").dataset.ends));
  }
}, 1000);

// ---- one sandbox ----

// series: [{ values, color, name }], values with nulls where a sample is
// missing (the line breaks there). Each series' count of drawn points is
// left in the canvas's data-<name> attribute (the tests read them).
function plot(canvas, series, scale, unit) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 24;
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#666";
  const all = series.flatMap((s) => s.values.filter((v) => v !== null).map((v) => v / scale));
  for (const s of series) canvas.dataset[s.name] = "0";
  if (all.length === 0) {
    ctx.fillText("no samples yet", pad, h / 2);
    return;
  }
  const max = Math.max(1, ...all) * 1.15;
  ctx.strokeStyle = "#ddd";
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let i = 0; i <= 4; i++) {
    const y = pad / 2 + ((h - pad) * i) / 4;
    ctx.moveTo(pad, y);
    ctx.lineTo(w - 4, y);
  }
  ctx.stroke();
  ctx.fillText(`${max.toFixed(0)} ${unit}`, 2, pad / 2 + 4);
  ctx.fillText("-10 min", pad, h - 4);
  ctx.fillText("now", w - 28, h - 4);
  const y = (v) => pad / 2 + (h - pad) * (1 - v / max);
  for (const s of series) {
    // 600 samples across the width: the newest at the right edge.
    const n = s.values.length;
    const x = (i) => pad + ((w - pad - 4) * (600 - n + i)) / 599;
    let drawn = 0, open = false;
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    s.values.forEach((v, i) => {
      if (v === null) {
        open = false;
        return;
      }
      const px = x(i), py = y(v / scale);
      if (open) {
        ctx.lineTo(px, py);
      } else {
        // A line starts (or starts again after a gap) with a stub, so
        // that a single sample shows too.
        ctx.moveTo(px, py);
        ctx.lineTo(px + 2, py);
      }
      open = true;
      drawn++;
    });
    ctx.stroke();
    canvas.dataset[s.name] = String(drawn);
  }
}

function egressRow(line) {
  // time=... conn=N verdict=deny dest="host:port" reason="..." (gateway/gateway.c)
  const f = {};
  for (const m of line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)) {
    f[m[1]] = m[2].startsWith('"') ? m[2].slice(1, -1) : m[2];
  }
  const tr = el("tr");
  const rest = Object.entries(f).filter(([k]) => !["time", "verdict", "dest"].includes(k)).map(([k, v]) => `${k}=${v}`).join(" ");
  tr.append(el("td", f.time || ""), el("td", f.verdict || "?", f.verdict === "deny" ? "deny" : f.verdict === "allow" ? "allow" : ""),
    el("td", f.dest || ""), el("td", rest || line));
  return tr;
}

function renderSandbox(d, item) {
  if (!d) return;
  if (d.gone) {
    $("sb-gone").hidden = false;
    $("sb-state").textContent = "gone";
    return;
  }
  $("sb-state").textContent = d.state;
  $("sb-host").textContent = d.hostname ?? "–";
  $("sb-left").dataset.ends = item && item.ends !== null ? item.ends : "";
  $("sb-left").textContent = item ? leftText(item.ends) : "";
  $("extend").disabled = !item || item.ends === null;
  $("sb-labels").replaceChildren(...labelsList(d.labels).children);
  const c = d.config || {};
  const cfg = [
    ["memory", c.memory_mib !== undefined ? `${c.memory_mib} MiB` : ""],
    ["CPUs", c.cpus],
    ["image", c.image],
    ["lifetime", c.session ? "session (ends after its last connection)" : c.lifetime_s !== undefined ? duration(c.lifetime_s) : ""],
    ["created", c.created ? new Date(c.created * 1000).toISOString() : ""],
    ["network", c.egress ? `allow: ${(c.allow_net || []).join(", ")}` : "none"],
  ];
  const dl = [];
  for (const [k, v] of cfg) dl.push(el("dt", k), el("dd", v ?? ""));
  $("sb-config").replaceChildren(...dl);
  const s = d.samples || { rss_kib: [], guest_kib: [], cpu_pm: [] };
  const guest = s.guest_kib || [];
  plot($("plot-mem"), [{ values: s.rss_kib, color: "#3366cc", name: "host" },
    { values: guest, color: "#109618", name: "guest" }], 1024, "MiB");
  plot($("plot-cpu"), [{ values: s.cpu_pm, color: "#dc3912", name: "cpu" }], 10, "%");
  $("mem-now").textContent = s.rss_kib.length ? `(now ${mib(s.rss_kib[s.rss_kib.length - 1])})` : "";
  $("guest-now").textContent = guest.length ? `(now ${mib(guest[guest.length - 1])})` : "";
  $("cpu-now").textContent = s.cpu_pm.length ? `(now ${(s.cpu_pm[s.cpu_pm.length - 1] / 10).toFixed(1)} %)` : "";
  const ps = [];
  for (const p of d.ps || []) {
    const tr = el("tr");
    tr.append(el("td", p.pid), el("td", p.argv), el("td", p.state === "running" ? "running" : `${p.state} ${p.status}`),
      el("td", p.detached ? "detached" : "attached"), el("td", new Date(p.started_ms).toISOString().slice(11, 19)));
    ps.push(tr);
  }
  $("sb-ps").replaceChildren(...ps);
  $("sb-ps-error").textContent = d.ps_error || "";
  const ex = (d.exposures || []).map((e) => {
    const li = el("li", `port ${e.guest_port} → `);
    li.append(el("code", e.url));
    return li;
  });
  $("sb-exposures").replaceChildren(...(ex.length ? ex : [el("li", "none", "muted")]));
  const lines = (d.egress || "").split("\n").filter((l) => l);
  $("sb-egress").replaceChildren(...lines.slice(-100).reverse().map(egressRow));
  const pre = $("sb-console");
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  if (pre.textContent !== d.console) {
    pre.textContent = d.console || "";
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }
  document.body.dataset.sandboxReady = "1";
}

$("extend").addEventListener("click", async () => {
  const item = last && last.sandboxes.find((s) => s.id === $("sb-id").textContent);
  $("sb-msg").textContent = "";
  if (!item || item.ends === null) return;
  try {
    await api("PATCH", `/api/v3/sandbox/${encodeURIComponent(item.id)}`, { stop_at_ms: (item.ends + 600) * 1000 });
  } catch (e) {
    $("sb-msg").textContent = `extend failed: ${e.message}`;
  }
});

$("kill").addEventListener("click", async () => {
  const id = $("sb-id").textContent;
  if (!confirm(`Kill ${id}? Everything in it is lost.`)) return;
  try {
    await api("DELETE", `/api/v3/sandbox/${encodeURIComponent(id)}`);
    location.hash = "#/";
  } catch (e) {
    $("sb-msg").textContent = `kill failed: ${e.message}`;
  }
});

start();
