// bench/dashboard.mjs, run by bench/dashboard.sh: time to first paint of
// the dashboard's list, and the server's CPU idle vs watched by browsers.
// Markdown on stdout; "KV key values..." lines on stderr for the summary.
import { readFileSync } from "node:fs";

const base = process.env.DASH_BASE;
const token = process.env.DASH_TOKEN;
const pid = Number(process.env.DASH_SERVER_PID);
const n = Number(process.env.DASH_N);
const hz = Number(process.env.DASH_CLK_TCK);
const runs = Number(process.env.DASH_RUNS || 5);
const pages = Number(process.env.DASH_PAGES || 10);
const windowS = Number(process.env.DASH_WINDOW_S || 30);
const { chromium } = await import(process.env.DASH_PW);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

// Polls fn in the page (not waitForFunction: the page's CSP refuses eval).
async function waitFor(p, fn, arg, timeout = 60_000) {
  const end = Date.now() + timeout;
  while (!(await p.evaluate(fn, arg))) {
    if (Date.now() > end) throw new Error(`timed out: ${fn}`);
    await sleep(50);
  }
}

async function signIn(ctx) {
  const p = await ctx.newPage();
  await p.goto(`${base}/`);
  await p.waitForSelector("#signin:not([hidden])");
  await p.fill("#token", token);
  await p.click("#signin-form button[type=submit]");
  await waitFor(p, (k) => document.querySelectorAll("#rows tr").length === k, n);
  return p;
}

// utime + stime of the server, seconds.
function cpuS() {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / hz;
}

// The list re-renders once per event: a MutationObserver counts them in
// each watching page, to show the watched window did get its events.
const countStart = (p) => p.evaluate(() => {
  window.sbxBenchEvents = 0;
  new MutationObserver(() => window.sbxBenchEvents++).observe(document.getElementById("rows"), { childList: true });
});
const countGet = (p) => p.evaluate(() => window.sbxBenchEvents);

async function measure(label, watching = []) {
  for (const p of watching) await countStart(p);
  const c0 = cpuS(), t0 = process.hrtime.bigint();
  await sleep(windowS * 1000);
  const c = cpuS() - c0, t = Number(process.hrtime.bigint() - t0) / 1e9;
  let events = 0;
  for (const p of watching) events += await countGet(p);
  return { label, cpu: c, wall: t, pct: (100 * c) / t, evs: events / t };
}

const browser = await chromium.launch({ executablePath: process.env.SBX_CHROMIUM, args: ["--no-sandbox"] });
try {
  // ---- first paint of the list ----
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const first = await signIn(ctx);
  await first.close();
  const paints = [], fcps = [];
  for (let i = 0; i < runs; i++) {
    const p = await ctx.newPage();
    await p.goto(`${base}/`);
    await waitFor(p, () => performance.getEntriesByName("sbx-list-painted").length > 0, null);
    const [rows, painted, fcp] = await p.evaluate(() => [
      document.querySelectorAll("#rows tr").length,
      performance.getEntriesByName("sbx-list-painted")[0].startTime,
      (performance.getEntriesByName("first-contentful-paint")[0] || {}).startTime ?? NaN,
    ]);
    if (rows !== n) throw new Error(`the list has ${rows} rows, not ${n}`);
    paints.push(painted);
    fcps.push(fcp);
    await p.close();
  }
  await ctx.close();
  console.log(`| ${n} sandboxes' records, signed in, page load → list painted (ms) | median | min | max |`);
  console.log("|---|---|---|---|");
  console.log(`| list painted (${runs} loads) | ${median(paints).toFixed(0)} | ${Math.min(...paints).toFixed(0)} | ${Math.max(...paints).toFixed(0)} |`);
  console.log(`| first contentful paint (the page, before its first event) | ${median(fcps).toFixed(0)} | ${Math.min(...fcps).toFixed(0)} | ${Math.max(...fcps).toFixed(0)} |`);
  console.log();
  console.log("\"List painted\": from the navigation's start to the frame after the one that");
  console.log(`painted all ${n} rows (a performance mark the page sets, serve/www/app.js).`);
  console.log();
  console.error(`KV dash.paint ${n} ${median(paints).toFixed(1)} ${Math.min(...paints).toFixed(1)} ${Math.max(...paints).toFixed(1)}`);

  // ---- the server's CPU: idle, watched, idle ----
  const idle1 = await measure("idle (no page open)");
  const ctxs = [], watching = [];
  for (let i = 0; i < pages; i++) {
    const c = await browser.newContext();
    ctxs.push(c);
    watching.push(await signIn(c));
  }
  const watched = await measure(`${pages} browser contexts watching the list`, watching);
  for (const c of ctxs) await c.close();
  await sleep(2000);
  const idle2 = await measure("idle again (pages closed)");
  console.log(`| sbx serve's CPU, ${n} records, ${windowS} s windows | CPU s | % of one core | list updates received, /s |`);
  console.log("|---|---|---|---|");
  for (const w of [idle1, watched, idle2]) {
    console.log(`| ${w.label} | ${w.cpu.toFixed(2)} | ${w.pct.toFixed(1)} | ${w.evs.toFixed(1)} |`);
  }
  const idle = (idle1.pct + idle2.pct) / 2;
  console.log();
  console.log(`Watched minus idle (mean of the two idle windows): ${(watched.pct - idle).toFixed(1)} % of one core` +
    ` for ${pages} pages, ${((watched.pct - idle) / pages).toFixed(2)} % per page (each gets the ${n}-row list once a second).`);
  console.log("Idle is the sampler's once-a-second round over every record (its /proc stat, its saved state,");
  console.log("an agent connection for the guest's memory, which fails at once here: nothing listens).");
  console.error(`KV dash.cpu ${pages} ${idle1.pct.toFixed(2)} ${watched.pct.toFixed(2)} ${idle2.pct.toFixed(2)}`);
} finally {
  await browser.close();
}
