// The sbx serve dashboard in a real browser: Debian's Chromium driven by
// playwright-core, against sandboxes made with the unmodified
// @deno/sandbox SDK. The tests run in order and share the two sandboxes
// (two VMs of the minimal image): A with agentId=agent-a-<run> and an
// allow list, B with agentId=agent-b-<run> and labels and a host name
// that carry markup. A second server, without sandboxes, listens over TLS.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { chromium } from "playwright-core";
import { Sandbox } from "@deno/sandbox";

const base = process.env.DENO_SANDBOX_ENDPOINT;
const token = process.env.DENO_DEPLOY_TOKEN;
const token2 = process.env.SBX_TOKEN2;
const shots = process.env.SBX_SHOTS;
const tlsBase = process.env.SBX_TLS_BASE;
const tlsCa = process.env.SBX_TLS_CA;
const sbxBin = process.env.SBX_BIN;
if (!base || !token || !token2 || !shots || !tlsBase || !tlsCa || !sbxBin) throw new Error("run through tests/dashboard/run.sh");

const T = { timeout: 180_000 };
const run = randomBytes(4).toString("hex");
// Were any of these parsed as markup, the page would fetch /pwned-* (the
// CSP allows images of the server) or log a CSP refusal of the handler,
// and have an <img> or <script> element: the tests look for all three.
const XSS_IMG = `<img src=/pwned-label onerror="window.__pwned='img'">`;
const XSS_SCRIPT = `<script>window.__pwned='script'</script>`;
const XSS_HOST = `<img src=/pwned-host onerror="window.__pwned='host'">`; // at most 64 bytes
let browser, ctx, page, A, B, child;
const injected = []; // what the page did that only markup from a sandbox would do

after(async () => {
  for (const sb of [A, B]) {
    if (!sb) continue;
    try { await sb.kill(); } catch { /* killed by a test */ }
    try { await sb.close(); } catch { /* gone */ }
  }
  if (browser) await browser.close();
});

// Polls fn(arg) in the page until it is true. Not page.waitForFunction:
// that evaluates a string, which the page's CSP (no unsafe-eval) refuses.
async function waitFor(p, fn, arg = null, timeout = 30_000) {
  const end = Date.now() + timeout;
  for (;;) {
    if (await p.evaluate(fn, arg)) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${fn.toString().slice(0, 160)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function signIn(p, tok, at = base) {
  await p.goto(`${at}/`);
  await p.waitForSelector("#signin:not([hidden])");
  await p.fill("#token", tok);
  await p.click("#signin-form button[type=submit]");
  await p.waitForSelector("#list:not([hidden])");
  await waitFor(p, () => document.body.dataset.listReady === "1");
}

const rowIds = (p) => p.$$eval("#rows tr", (trs) => trs.map((tr) => tr.dataset.id));

// The browser's session cookie and CSRF token, for requests made by hand.
async function session(c, p) {
  const cookie = (await c.cookies()).find((k) => k.name === "sbx_session");
  const csrf = await p.evaluate(() => fetch("/dashboard/api/session").then((r) => r.json()).then((j) => j.csrf));
  return { cookie: `sbx_session=${cookie.value}`, csrf };
}

test("sign in: a wrong token is refused, a token of the server lets in; the cookie is HttpOnly and SameSite=Strict", T, async () => {
  browser = await chromium.launch({ executablePath: process.env.SBX_CHROMIUM, args: ["--no-sandbox"] });
  ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await ctx.newPage();
  page.on("pageerror", (e) => console.log(`# page error: ${e.message}`));
  page.on("request", (r) => { if (r.url().includes("/pwned")) injected.push(`request ${r.url()}`); });
  page.on("console", (m) => {
    if (/Content Security Policy|pwned/i.test(m.text())) injected.push(`console ${m.text()}`);
  });
  page.on("dialog", (d) => { if (d.type() === "alert") injected.push(`alert ${d.message()}`); });
  await page.goto(`${base}/`);
  await page.waitForSelector("#signin:not([hidden])");
  await page.fill("#token", "ddo_not_a_token_of_this_server");
  await page.click("#signin-form button[type=submit]");
  await waitFor(page, () => document.getElementById("signin-error").textContent !== "");
  await page.screenshot({ path: `${shots}/signin.png` });
  await signIn(page, token);
  const cookie = (await ctx.cookies()).find((k) => k.name === "sbx_session");
  assert.ok(cookie, "no sbx_session cookie");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.equal(cookie.secure, false, "Secure over plain HTTP");
  assert.ok(!page.url().includes(token), "the token is in the URL");
  assert.ok(!(await page.content()).includes(token), "the token is in the page");
});

test("the list shows both SDK sandboxes live, and the filter shows one", T, async () => {
  [A, B] = await Promise.all([
    Sandbox.create({ timeout: "10m", memory: "768MiB", labels: { agentId: `agent-a-${run}` },
      allowNet: ["allowed.test:80"] }),
    Sandbox.create({ timeout: "10m", memory: "768MiB",
      labels: { agentId: `agent-b-${run}`, note: XSS_IMG, html: XSS_SCRIPT } }),
  ]);
  // B's host name, set inside B as root: what its agent reports in INFO.
  const named = await B.spawn("sh", { args: ["-c", 'printf %s "$1" >/proc/sys/kernel/hostname', "sh", XSS_HOST],
    stdout: "piped", stderr: "piped" });
  const namedOut = await named.output();
  assert.equal(namedOut.status.success, true, `setting B's host name: ${namedOut.stderrText}`);
  // No reload: the open page learns of them from its event stream.
  await waitFor(page, ([a, b]) => {
    const running = [...document.querySelectorAll("#rows tr")]
      .filter((tr) => tr.children[1].textContent === "running").map((tr) => tr.dataset.id);
    return running.includes(a) && running.includes(b);
  }, [A.id, B.id], 30_000);
  assert.match(await page.textContent("#count"), /^2 sandboxes$/);
  const rowA = await page.textContent(`#rows tr[data-id="${A.id}"]`);
  assert.ok(rowA.includes(`agentId=agent-a-${run}`), rowA);
  assert.ok(rowA.includes("running"), rowA);
  assert.match(rowA, /\d+m \d\ds/, "no time left");
  await page.fill("#filter", `agentId=agent-a-${run}`);
  await waitFor(page, () => document.querySelectorAll("#rows tr").length === 1);
  assert.deepEqual(await rowIds(page), [A.id]);
  assert.match(await page.textContent("#count"), /^1 of 2 sandboxes$/);
  await page.fill("#filter", "");
  await waitFor(page, () => document.querySelectorAll("#rows tr").length === 2);
  await page.waitForTimeout(1500); // a sample of memory in the list
  await page.screenshot({ path: `${shots}/list.png` });
});

test("markup in labels and the host name is shown as text and runs no script; the page has a CSP", T, async () => {
  const res = await fetch(`${base}/`);
  const csp = res.headers.get("content-security-policy") || "";
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  const row = await page.textContent(`#rows tr[data-id="${B.id}"]`);
  assert.ok(row.includes(`note=${XSS_IMG}`), row);
  assert.ok(row.includes(`html=${XSS_SCRIPT}`), row);
  assert.equal(await page.$$eval("#rows img, #rows script", (e) => e.length), 0);
  await page.goto(`${base}/#/sandbox/${B.id}`);
  await waitFor(page, () => document.body.dataset.sandboxReady === "1");
  const labels = await page.textContent("#sb-labels");
  assert.ok(labels.includes(XSS_IMG) && labels.includes(XSS_SCRIPT), labels);
  // B's host name arrives with the detail (its agent's INFO): once shown,
  // a few more events re-render all of it, then nothing may have been
  // parsed as markup, and the host name reads as B's agent reports it.
  await waitFor(page, () => !["", "–"].includes(document.getElementById("sb-host").textContent) ||
    document.querySelector("#sb-host *") !== null, null, 20_000);
  await page.waitForTimeout(1500);
  assert.deepEqual(injected, [], "the page treated a sandbox's text as markup");
  assert.equal(await page.$$eval("main img, main script", (e) => e.length), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.textContent("#sb-host"), XSS_HOST);
  await page.screenshot({ path: `${shots}/markup.png` });
});

test("the sandbox page: console, an egress denial, commands left running (one detached), a memory plot", T, async () => {
  // The page is open first: what follows must reach it live.
  await page.goto(`${base}/#/sandbox/${A.id}`);
  await waitFor(page, () => document.body.dataset.sandboxReady === "1");
  const mark = `dash-console-${run}`;
  const echo = await A.spawn("sh", { args: ["-c", `echo ${mark} >/dev/console`] });
  assert.equal((await echo.output()).status.success, true);
  // Denied by the gateway: a port A's allow list does not name (a name no
  // pattern matches would not even resolve in the guest, and never reach
  // the gateway's audit log).
  const nc = await A.spawn("sh", { args: ["-c", "nc -w 3 allowed.test 81 </dev/null 2>&1; echo rc=$?"],
    stdout: "piped", stderr: "piped" });
  const out = await nc.output();
  // busybox nc may exit 0 after a reset: what counts is the gateway's deny line.
  assert.ok(!/HTTP/.test(out.stdoutText), `nc: ${out.stdoutText}`);
  child = await A.spawn("sleep", { args: ["600"], stdout: "null", stderr: "null" });
  // The SDK has no detached commands: the CLI starts one in the same
  // sandbox (same state directory), as an operator would.
  const detachedPid = execFileSync(sbxBin, ["exec", "--detach", A.id, "--", "sleep", "601"],
    { encoding: "utf8", env: process.env }).trim();
  assert.match(detachedPid, /^\d+$/, `sbx exec --detach printed ${detachedPid}`);
  await waitFor(page, (m) => document.getElementById("sb-console").textContent.includes(m), mark, 20_000);
  await waitFor(page, () => document.getElementById("sb-config").textContent.includes("allowed.test"), null, 20_000);
  await waitFor(page, () => [...document.querySelectorAll("#sb-egress tr")]
    .some((tr) => tr.textContent.includes("deny") && tr.textContent.includes("allowed.test:81")), null, 20_000);
  await waitFor(page, () => [...document.querySelectorAll("#sb-ps tr")]
    .some((tr) => tr.textContent.includes("sleep 600") && tr.textContent.includes("running")), null, 20_000);
  await waitFor(page, (pid) => [...document.querySelectorAll("#sb-ps tr")]
    .some((tr) => tr.children[0].textContent === pid && tr.textContent.includes("sleep 601") &&
      tr.textContent.includes("running") && tr.children[3].textContent === "detached"), detachedPid, 20_000);
  // At least three samples of each, host RSS (blue) and the guest's own
  // use (green), and both lines are drawn: pixels of their colours.
  await waitFor(page, () => {
    const c = document.getElementById("plot-mem").dataset;
    return Number(c.host) >= 3 && Number(c.guest) >= 3;
  }, null, 20_000);
  const px = await page.evaluate(() => {
    const c = document.getElementById("plot-mem");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let blue = 0, green = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] === 0) continue;
      if (d[i + 2] > 150 && d[i] < 120) blue++;
      if (d[i + 1] > 110 && d[i] < 80 && d[i + 2] < 80) green++;
    }
    return { blue, green };
  });
  // A few seconds of samples make short lines at the right ("now") end.
  assert.ok(px.blue >= 10, `the host RSS line has ${px.blue} pixels`);
  assert.ok(px.green >= 10, `the guest memory line has ${px.green} pixels`);
  // The guest's figure is the agent's, not QEMU's: less than the VM's 768 MiB.
  const guestNow = await page.textContent("#guest-now");
  const m = guestNow.match(/now (\d+) MiB/);
  assert.ok(m && Number(m[1]) > 0 && Number(m[1]) < 768, `guest memory: ${guestNow}`);
  const config = await page.textContent("#sb-config");
  assert.ok(config.includes("768 MiB") && config.includes("allowed.test"), config);
  await page.screenshot({ path: `${shots}/sandbox.png`, fullPage: true });
});

test("extend changes the time left", T, async () => {
  const before = Number(await page.getAttribute("#sb-left", "data-ends"));
  assert.ok(before > Date.now() / 1000, `ends ${before}`);
  await page.click("#extend");
  await waitFor(page, (b) => Number(document.getElementById("sb-left").dataset.ends) >= b + 500,
    before, 20_000);
  assert.equal(await page.textContent("#sb-msg"), "");
});

test("refused: no cookie, a forged origin, no CSRF token, another token's sandbox", T, async () => {
  const { cookie, csrf } = await session(ctx, page);
  const origin = base;
  const del = (headers) => fetch(`${base}/api/v3/sandbox/${A.id}`, { method: "DELETE", headers });
  assert.equal((await fetch(`${base}/dashboard/api/events`)).status, 401);
  assert.equal((await fetch(`${base}/dashboard/api/session`)).status, 401);
  assert.equal((await del({ Origin: origin, "X-SBX-CSRF": csrf })).status, 401, "without the cookie");
  assert.equal((await del({ Cookie: cookie, Origin: "http://evil.example", "X-SBX-CSRF": csrf })).status, 401,
    "forged origin");
  assert.equal((await del({ Cookie: cookie, "X-SBX-CSRF": csrf })).status, 401, "no origin on a DELETE");
  assert.equal((await del({ Cookie: cookie, Origin: origin })).status, 401, "without the CSRF token");
  assert.equal((await fetch(`${base}/dashboard/api/logout`, { method: "POST",
    headers: { Cookie: cookie, Origin: "http://evil.example", "X-SBX-CSRF": csrf } })).status, 403);
  // The other token's session.
  const login = await fetch(`${base}/dashboard/api/login`, { method: "POST",
    headers: { Origin: origin, "Content-Type": "application/json" }, body: JSON.stringify({ token: token2 }) });
  assert.equal(login.status, 200);
  const cookie2 = login.headers.get("set-cookie").split(";")[0];
  const csrf2 = (await login.json()).csrf;
  assert.equal((await del({ Cookie: cookie2, Origin: origin, "X-SBX-CSRF": csrf2 })).status, 404);
  assert.equal((await fetch(`${base}/api/v3/sandbox/${A.id}`, { method: "PATCH",
    headers: { Cookie: cookie2, Origin: origin, "X-SBX-CSRF": csrf2, "Content-Type": "application/json" },
    body: JSON.stringify({ stop_at_ms: Date.now() + 3_600_000 }) })).status, 404);
  assert.equal((await fetch(`${base}/dashboard/api/events?id=${A.id}`, { headers: { Cookie: cookie2 } })).status, 404);
  // A cross-site sign-in is refused too.
  assert.equal((await fetch(`${base}/dashboard/api/login`, { method: "POST",
    headers: { Origin: "http://evil.example", "Content-Type": "application/json" },
    body: JSON.stringify({ token }) })).status, 403);
  // And A is still there.
  const list = await fetch(`${base}/api/v2/sandboxes`, { headers: { Authorization: `Bearer ${token}` } });
  assert.ok((await list.json()).some((s) => s.id === A.id), "A was killed");
});

test("a second token sees nothing of the first's", T, async () => {
  const ctx2 = await browser.newContext();
  try {
    const p2 = await ctx2.newPage();
    await signIn(p2, token2);
    await p2.waitForTimeout(1500);
    assert.equal(await p2.textContent("#count"), "0 sandboxes");
    const html = await p2.content();
    assert.ok(!html.includes(A.id) && !html.includes(B.id) && !html.includes(run), "the page shows the first token's");
    await p2.goto(`${base}/#/sandbox/${A.id}`);
    await p2.waitForSelector("#sb-gone:not([hidden])", { timeout: 10_000 });
    assert.equal(await p2.textContent("#sb-ps"), "");
    assert.equal(await p2.textContent("#sb-console"), "");
  } finally {
    await ctx2.close();
  }
});

test("kill (confirmed) removes the row live from another open list", T, async () => {
  const watcher = await ctx.newPage();
  await watcher.goto(`${base}/`);
  await waitFor(watcher, (a) => [...document.querySelectorAll("#rows tr")].some((tr) => tr.dataset.id === a), A.id);
  await page.goto(`${base}/#/sandbox/${A.id}`);
  await waitFor(page, () => document.body.dataset.sandboxReady === "1");
  page.once("dialog", (d) => d.accept());
  await page.click("#kill");
  await waitFor(watcher, (a) => ![...document.querySelectorAll("#rows tr")].some((tr) => tr.dataset.id === a),
    A.id, 20_000);
  assert.deepEqual(await rowIds(watcher), [B.id]);
  await page.waitForSelector("#list:not([hidden])");
  await watcher.close();
  A = null;
});

test("sign out ends the session", T, async () => {
  const { cookie } = await session(ctx, page);
  await page.click("#signout");
  await page.waitForSelector("#signin:not([hidden])");
  assert.equal((await fetch(`${base}/dashboard/api/session`, { headers: { Cookie: cookie } })).status, 401);
});

// Over TLS the session cookie is Secure (and the page works there: the
// list arrives over the event stream); over plain HTTP on loopback it is
// not (the first test), or the browser would never send it back.
test("under TLS the session cookie is Secure", T, async () => {
  const body = JSON.stringify({ token });
  const setCookie = await new Promise((resolve, reject) => {
    const req = request(`${tlsBase}/dashboard/api/login`, { method: "POST", ca: readFileSync(tlsCa),
      headers: { Origin: tlsBase, "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) } },
    (res) => {
      res.resume();
      if (res.statusCode !== 200) reject(new Error(`sign-in over TLS: ${res.statusCode}`));
      else resolve(res.headers["set-cookie"] || []);
    });
    req.on("error", reject);
    req.end(body);
  });
  assert.equal(setCookie.length, 1, JSON.stringify(setCookie));
  assert.match(setCookie[0], /^sbx_session=[0-9a-f]{64};/);
  assert.match(setCookie[0], /; Secure(;|$)/, setCookie[0]);
  assert.match(setCookie[0], /; HttpOnly(;|$)/, setCookie[0]);
  const plain = await fetch(`${base}/dashboard/api/login`, { method: "POST",
    headers: { Origin: base, "Content-Type": "application/json" }, body });
  assert.equal(plain.status, 200);
  assert.doesNotMatch(plain.headers.get("set-cookie"), /Secure/i);
  // The browser: signs in over TLS, keeps a Secure cookie, sees the list.
  const tctx = await browser.newContext({ ignoreHTTPSErrors: true });
  try {
    const p = await tctx.newPage();
    await signIn(p, token, tlsBase);
    const cookie = (await tctx.cookies()).find((k) => k.name === "sbx_session");
    assert.ok(cookie, "no sbx_session cookie over TLS");
    assert.equal(cookie.secure, true);
    assert.equal(cookie.httpOnly, true);
    assert.equal(await p.textContent("#count"), "0 sandboxes");
  } finally {
    await tctx.close();
  }
});
