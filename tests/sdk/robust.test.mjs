// The unmodified @deno/sandbox SDK (0.13.2) against `sbx serve` under
// stress and failure: 100 concurrent spawns, a large fs.upload checked by
// its hash in the guest, bad messages and an oversized one over a raw
// WebSocket, bad create headers, a sandbox killed from the CLI under live
// calls, and a restart of the server that must find a duration sandbox
// again. SBX_SDK_UPLOAD_MIB sets the upload's size (default 1024).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, openSync, writeSync, closeSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { InvalidMemoryError, Sandbox } from "@deno/sandbox";

const T = { timeout: 180_000 };
const run = randomBytes(6).toString("hex");
const SBX = process.env.SBX;
let sandbox;
let local;

before(async () => {
  sandbox = await Sandbox.create({ timeout: "10m", labels: { suite: "sdk-robust", run } });
  local = mkdtempSync(join(tmpdir(), "sbx-sdk-robust-"));
});

after(async () => {
  if (sandbox) {
    await sandbox.kill().catch(() => {});
    await sandbox.close();
  }
  if (local) rmSync(local, { recursive: true, force: true });
});

// Rejects if p takes longer than ms: a hang must fail, not stall the suite.
const within = (p, ms, what) =>
  Promise.race([
    p,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref()),
  ]);

// A raw JSON-RPC socket to the sandbox: send, and the next answer.
async function rawSocket(id) {
  const url = process.env.DENO_SANDBOX_ENDPOINT.replace(/^http/, "ws");
  const ws = new WebSocket(`${url}/api/v3/sandbox/${id}/connect`, {
    headers: { authorization: `Bearer ${process.env.DENO_DEPLOY_TOKEN}` },
  });
  const answers = [];
  let waiting = null;
  ws.on("message", (data) => {
    const msg = JSON.parse(data.toString());
    if (msg.method) return;
    answers.push(msg);
    if (waiting) waiting();
  });
  const next = () =>
    within(
      new Promise((resolve) => {
        if (answers.length) return resolve(answers.shift());
        waiting = () => {
          waiting = null;
          resolve(answers.shift());
        };
      }),
      30_000,
      "raw socket",
    );
  await new Promise((resolve, reject) => {
    ws.on("open", resolve);
    ws.on("error", reject);
  });
  return { ws, next };
}

test("100 concurrent spawns through the SDK each get their own output and status", T, async () => {
  const n = 100;
  const children = await Promise.all(
    Array.from({ length: n }, (_, i) => sandbox.spawn("echo", { args: [`n${i}`], stdout: "piped", stderr: "null" })),
  );
  const outs = await Promise.all(children.map((c) => c.output()));
  outs.forEach((o, i) => {
    assert.equal(o.stdoutText, `n${i}\n`);
    assert.equal(o.status.code, 0);
  });
  assert.equal(await sandbox.sh`echo after`.text(), "after\n");
});

test("a large fs.upload arrives whole (sha256 in the guest)", { timeout: 600_000 }, async (t) => {
  const mib = Number(process.env.SBX_SDK_UPLOAD_MIB ?? 1024);
  const file = join(local, "big.bin");
  const hash = createHash("sha256");
  const block = randomBytes(1 << 20);
  const fd = openSync(file, "w");
  for (let i = 0; i < mib; i++) {
    block.writeUInt32LE(i, 0); // each MiB differs: order and loss show
    writeSync(fd, block);
    hash.update(block);
  }
  closeSync(fd);
  const remote = `/home/app/big-${run}.bin`;
  const t0 = Date.now();
  await sandbox.fs.upload(file, remote);
  const secs = (Date.now() - t0) / 1000;
  t.diagnostic(`fs.upload of ${mib} MiB: ${secs.toFixed(1)} s (${(mib / secs).toFixed(1)} MiB/s)`);
  rmSync(file);
  const child = await sandbox.spawn("sha256sum", { args: [remote], stdout: "piped", stderr: "piped" });
  const out = await child.output();
  assert.equal(out.stdoutText.split(" ")[0], hash.digest("hex"), out.stderrText);
  assert.equal((await sandbox.fs.stat(remote)).size, mib << 20);
  await sandbox.fs.remove(remote);
});

test("bad messages over a raw WebSocket get JSON-RPC errors; the socket serves on", T, async () => {
  const { ws, next } = await rawSocket(sandbox.id);
  ws.send("{not json");
  assert.equal((await next()).error.code, -32700);
  ws.send("[1,2,3]");
  assert.equal((await next()).error.code, -32700);
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, params: {} }));
  assert.equal((await next()).error.code, -32600);
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "stat", params: [1] }));
  assert.equal((await next()).error.code, -32602);
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: 3, method: "noSuchMethod", params: {} }));
  const unknown = await next();
  assert.equal(unknown.error.code, -32601);
  assert.match(unknown.error.message, /noSuchMethod/);
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: 4, method: "fileRead", params: { fileHandleId: 99999, length: 10 } }));
  assert.equal((await next()).result.error.constructorName, "BadResource");
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: 5, method: "processWait", params: { pid: 999999 } }));
  assert.equal((await next()).result.error.code, "ENOENT");
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: 6, method: "stat", params: { path: 42 } }));
  assert.equal((await next()).result.error.constructorName, "TypeError");
  ws.send(Buffer.from("binary frame"), { binary: true });
  assert.equal((await next()).error.code, -32700);
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: 7, method: "stat", params: { path: "/" } }));
  const st = await next();
  assert.equal(st.id, 7);
  assert.equal(st.result.ok.isDirectory, true);
  // fetch: a header name that is no token (curl would read "@FILE" as
  // headers from that file), no URL: TypeErrors naming the call.
  const fetchParams = { url: "http://127.0.0.1:1/", method: "GET", headers: [["@/etc/passwd", "x"]], redirect: "follow" };
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: 8, method: "fetch", params: fetchParams }));
  const badName = (await next()).result.error;
  assert.equal(badName.constructorName, "TypeError");
  assert.match(badName.message, /^fetch http:\/\/127\.0\.0\.1:1\/: header @\/etc\/passwd/);
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: 9, method: "fetch", params: { method: "GET", headers: [] } }));
  assert.match((await next()).result.error.message, /^fetch: url and method/);
  ws.close();
});

test("a message above 64 MiB closes that socket with 1009; the server serves on", T, async () => {
  const { ws } = await rawSocket(sandbox.id);
  const closed = new Promise((resolve) => ws.on("close", (code) => resolve(code)));
  ws.on("error", () => {});
  const big = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "writeTextFile", params: { path: "/tmp/x", content: "x".repeat(65 << 20) } });
  ws.send(big);
  assert.equal(await within(closed, 60_000, "oversized message"), 1009);
  assert.equal(await sandbox.sh`echo still`.text(), "still\n");
});

test("create headers: bad base64, bad JSON, memory out of range; the SDK's own memory check", T, async () => {
  const url = process.env.DENO_SANDBOX_ENDPOINT.replace(/^http/, "ws");
  const refused = (config) =>
    new Promise((resolve) => {
      const ws = new WebSocket(`${url}/api/v3/sandboxes/create`, {
        headers: { authorization: `Bearer ${process.env.DENO_DEPLOY_TOKEN}`, "x-deno-sandbox-config": config },
      });
      ws.on("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode, body: JSON.parse(body) }));
      });
      ws.on("open", () => {
        ws.close();
        resolve({ status: 101 });
      });
      ws.on("error", () => {});
    });
  const b64 = (o) => Buffer.from(typeof o === "string" ? o : JSON.stringify(o)).toString("base64");
  for (const [config, code] of [
    ["!!!", "INVALID_CONFIG"],
    [b64("{not json"), "INVALID_CONFIG"],
    [b64({ memory_mb: 767 }), "INVALID_MEMORY"],
    [b64({ memory_mb: 4097 }), "INVALID_MEMORY"],
    [b64({ memory_mb: "lots" }), "INVALID_MEMORY"],
  ]) {
    const r = await refused(config);
    assert.equal(r.status, 400, `${config}: ${JSON.stringify(r)}`);
    assert.equal(r.body.code, code, config);
  }
  await assert.rejects(Sandbox.create({ memory: "5GiB" }), InvalidMemoryError);
});

test("a sandbox killed with `sbx kill` under live calls: the calls fail, none hangs", T, async () => {
  const victim = await Sandbox.create({ labels: { suite: "sdk-robust-kill", run } });
  const child = await victim.spawn("sleep", { args: ["600"], stdout: "piped", stderr: "null" });
  const status = child.status;
  const blocked = victim.sh`sleep 600`.text();
  status.catch(() => {});
  blocked.catch(() => {});
  await new Promise((resolve) => setTimeout(resolve, 1000));
  execFileSync(SBX, ["kill", victim.id], { env: process.env });
  await assert.rejects(within(status, 60_000, "processWait"), (e) => !/no answer/.test(e.message));
  await assert.rejects(within(blocked, 60_000, "sh"), (e) => !/no answer/.test(e.message));
  await assert.rejects(within(victim.fs.stat("/"), 60_000, "stat after the kill"), (e) => !/no answer/.test(e.message));
  await victim.close().catch(() => {});
  assert.equal(await sandbox.sh`echo survivor`.text(), "survivor\n");
});

// A second server of our own (same state directory, its own token), so
// that the test can stop and start it. Both its ports are the kernel's
// choice: a fixed one (exposeHttp's default, 8443) fails when another
// server on the machine holds it.
async function startServer(tokens) {
  const proc = spawn(SBX, ["serve", "--listen", "127.0.0.1:0", "--expose-listen", "127.0.0.1:0", "--tokens", tokens, "--image", "debian", "--session-grace", "5"], {
    env: process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  const port = await within(
    new Promise((resolve, reject) => {
      const look = (d) => {
        log += d;
        const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
        if (m) resolve(Number(m[1]));
      };
      proc.stdout.on("data", look);
      proc.stderr.on("data", look);
      proc.on("exit", (code) => reject(new Error(`sbx serve exited ${code}: ${log}`)));
    }),
    30_000,
    "sbx serve start",
  );
  return { proc, endpoint: `http://127.0.0.1:${port}` };
}

async function stopServer(s) {
  const gone = new Promise((resolve) => s.proc.on("exit", resolve));
  s.proc.kill("SIGTERM");
  await within(gone, 60_000, "sbx serve stop");
}

test("sbx serve restarted: a duration sandbox is found again and Sandbox.connect works", T, async () => {
  const tokens = join(local, "tokens");
  const token = execFileSync(SBX, ["serve", "--tokens", tokens, "token", "new"], { env: process.env }).toString().trim();
  let server = await startServer(tokens);
  let id;
  try {
    const first = await Sandbox.create({ timeout: "5m", sandboxEndpoint: server.endpoint, token, labels: { suite: "sdk-restart", run } });
    id = first.id;
    await first.fs.writeTextFile("/tmp/mark", run);
    await first.close();
    await stopServer(server);
    server = await startServer(tokens);
    const again = await Sandbox.connect({ id, sandboxEndpoint: server.endpoint, token });
    assert.equal(await again.fs.readTextFile("/tmp/mark"), run);
    assert.equal(await again.sh`echo back`.text(), "back\n");
    await again.kill();
    await again.close();
  } finally {
    try {
      if (id) execFileSync(SBX, ["kill", id], { env: process.env, stdio: "ignore" });
    } catch {
      // already gone
    }
    await stopServer(server).catch(() => {});
  }
});
