// exposeHttp and exposeSsh of the unmodified @deno/sandbox SDK (0.13.2)
// against `sbx serve`: an HTTP server in the sandbox answers at the
// https://<name>.BASE[:port] the SDK returns, over TLS verified against the
// CA sbx serve made (SBX_SERVE_CA, from run.sh); unknown names and the names
// of a killed sandbox get 404; `ssh USER@HOST` logs in as app with the
// username as the only credential, and a wrong username is refused; the
// names of a duration sandbox route again after sbx serve restarts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Sandbox } from "@deno/sandbox";

const T = { timeout: 180_000 };
const CA = process.env.SBX_SERVE_CA;
if (!CA) throw new Error("set SBX_SERVE_CA to the CA file sbx serve printed");
const ca = readFileSync(CA);

// The exposure's name resolves to 127.0.0.1 here, whatever the resolver
// says of *.localhost; SNI and certificate checks still use the name.
function lookup(host, options, callback) {
  if (options && options.all) callback(null, [{ address: "127.0.0.1", family: 4 }]);
  else callback(null, "127.0.0.1", 4);
}

function get(url) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, lookup, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer from ${url}`)));
  });
}

function getBytes(url) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, lookup, agent: false }, (res) => {
      const parts = [];
      res.on("data", (d) => parts.push(d));
      res.on("end", () => resolve(Buffer.concat(parts)));
    });
    req.on("error", reject);
    req.setTimeout(60_000, () => req.destroy(new Error(`no answer from ${url}`)));
  });
}

// Until the server in the sandbox listens, the relay answers 502.
async function getWhenUp(url) {
  for (let i = 0; ; i++) {
    const r = await get(url);
    if (r.status !== 502 || i >= 60) return r;
    await new Promise((ok) => setTimeout(ok, 500));
  }
}

function ssh(user, host, command) {
  return new Promise((resolve) => {
    execFile(
      "ssh",
      ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20",
        `${user}@${host}`, command],
      { timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function serveFiles(sandbox, port, text) {
  await sandbox.fs.mkdir("/tmp/www", { recursive: true });
  await sandbox.fs.writeTextFile("/tmp/www/hello.txt", text);
  // Runs until stopped; its output goes nowhere.
  return await sandbox.spawn("python3", {
    args: ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", "/tmp/www"],
    stdout: "null",
    stderr: "null",
  });
}

test("exposeHttp: the sandbox's server answers over TLS at its name; others get 404; kill ends it", T, async () => {
  // Sandbox.create({port}) calls exposeHttp itself, before the boot ends.
  const sandbox = await Sandbox.create({ timeout: "5m", port: 8080 });
  let killed = false;
  try {
    assert.match(sandbox.url, /^https:\/\/[0-9a-z]{24}\.[a-z0-9.-]+(:\d+)?$/);
    const server = await serveFiles(sandbox, 8080, "hello from the sandbox\n");
    const r = await getWhenUp(`${sandbox.url}/hello.txt`);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body, "hello from the sandbox\n");

    // 8 MiB through the relay and TLS, byte for byte (the queues between
    // the two sides are far smaller: reading must pause and resume).
    await sandbox.sh`head -c 8388608 /dev/urandom > /tmp/www/big.bin`;
    const sum = (await sandbox.sh`sha256sum /tmp/www/big.bin`.text()).split(" ")[0];
    const big = await getBytes(`${sandbox.url}/big.bin`);
    assert.equal(big.length, 8388608);
    assert.equal(createHash("sha256").update(big).digest("hex"), sum);

    // A second name for the same port, by the call itself.
    const url = await sandbox.exposeHttp({ port: 8080 });
    assert.notEqual(url, sandbox.url);
    assert.equal((await get(`${url}/hello.txt`)).body, "hello from the sandbox\n");

    // A name nobody was given.
    const host = new URL(url);
    const other = `https://${"x".repeat(24)}.${host.host.split(".").slice(1).join(".")}`;
    const miss = await get(`${other}/hello.txt`);
    assert.equal(miss.status, 404);
    assert.match(miss.body, /no sandbox port is exposed/);

    // {pid}: the port that process listens on; a process that is not
    // there is refused with a reason, not a hang.
    const byPid = await sandbox.exposeHttp({ pid: server.pid });
    assert.equal((await get(`${byPid}/hello.txt`)).body, "hello from the sandbox\n");
    await assert.rejects(sandbox.exposeHttp({ pid: 999999 }), (err) => {
      assert.match(String(err.message), /no process 999999/);
      return true;
    });

    await server.kill();
    await server.status;
    await sandbox.kill();
    killed = true;
    for (const u of [url, byPid, sandbox.url]) {
      const gone = await get(`${u}/hello.txt`);
      assert.equal(gone.status, 404, `${u} after kill`);
    }
  } finally {
    if (!killed) await sandbox.kill();
  }
});

test("exposeSsh: ssh USER@HOST logs in as app; a wrong username is refused", T, async () => {
  // Sandbox.create({ssh: true}) calls exposeSsh itself, before the boot ends.
  const sandbox = await Sandbox.create({ timeout: "5m", ssh: true });
  let killed = false;
  try {
    const { hostname, username } = sandbox.ssh;
    assert.match(hostname, /^127\.\d+\.\d+\.\d+$/);
    assert.match(username, /^[a-z][0-9a-z]{23}$/);
    const ok = await ssh(username, hostname, "whoami; pwd");
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "app\n/home/app\n");

    // The call itself: another address and username, as good.
    const again = await sandbox.exposeSsh();
    assert.notEqual(again.username, username);
    const ok2 = await ssh(again.username, again.hostname, "id -un");
    assert.equal(ok2.stdout, "app\n", ok2.stderr);

    for (const user of ["app", "root", `${username.slice(0, -1)}${username.at(-1) === "x" ? "y" : "x"}`]) {
      const wrong = await ssh(user, hostname, "true");
      assert.notEqual(wrong.code, 0, `${user} must not log in without a key`);
    }
    await sandbox.kill();
    killed = true;
    const after = await ssh(username, hostname, "true");
    assert.notEqual(after.code, 0, "the username is revoked with the sandbox");
  } finally {
    if (!killed) await sandbox.kill();
  }
});

// A server of this test's own (its own token file), with its exposeHttp
// listener on exposePort (0: any; the port is in the URLs, so a restart
// takes the same one).
const SBX = process.env.SBX;
async function startServer(tokens, exposePort) {
  const proc = spawn(SBX, ["serve", "--listen", "127.0.0.1:0", "--expose-listen", `127.0.0.1:${exposePort}`,
    "--tokens", tokens, "--image", "debian", "--session-grace", "5"], {
    env: process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const s = { proc, log: "" };
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sbx serve did not start: ${s.log}`)), 60_000);
    const look = (d) => {
      s.log += d;
      const m = s.log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      const x = s.log.match(/TLS on 127\.0\.0\.1:(\d+)/);
      if (m && x) {
        clearTimeout(timer);
        s.endpoint = `http://127.0.0.1:${m[1]}`;
        s.exposePort = Number(x[1]);
        resolve();
      }
    };
    proc.stdout.on("data", look);
    proc.stderr.on("data", look);
    proc.on("exit", (code) => reject(new Error(`sbx serve exited ${code}: ${s.log}`)));
  });
  return s;
}

async function stopServer(s) {
  if (s.proc.exitCode !== null) return;
  const gone = new Promise((resolve) => s.proc.on("exit", resolve));
  s.proc.kill("SIGTERM");
  await gone;
}

test("exposeHttp names survive a restart of sbx serve: the same URL answers again, and ends with the sandbox", T, async () => {
  const local = mkdtempSync(join(tmpdir(), "sbx-sdk-expose-"));
  const tokens = join(local, "tokens");
  const token = execFileSync(SBX, ["serve", "--tokens", tokens, "token", "new"], { env: process.env }).toString().trim();
  let server = await startServer(tokens, 0);
  let id;
  try {
    const first = await Sandbox.create({ timeout: "5m", sandboxEndpoint: server.endpoint, token });
    id = first.id;
    await serveFiles(first, 8080, `before ${id}\n`);
    const url = await first.exposeHttp({ port: 8080 });
    const unbound = await first.exposeHttp({ port: 8081 }); // nothing listens there
    assert.equal((await getWhenUp(`${url}/hello.txt`)).body, `before ${id}\n`);
    await first.close();
    await stopServer(server);

    server = await startServer(tokens, server.exposePort);
    assert.match(server.log, /2 exposeHttp names found again/);
    const again = await Sandbox.connect({ id, sandboxEndpoint: server.endpoint, token });
    // The file server may or may not have outlived the first connection.
    await again.fs.writeTextFile("/tmp/www/hello.txt", `after ${id}\n`);
    if ((await get(`${url}/hello.txt`)).status === 502) await serveFiles(again, 8080, `after ${id}\n`);
    const r = await getWhenUp(`${url}/hello.txt`);
    assert.deepEqual([r.status, r.body], [200, `after ${id}\n`]);
    assert.equal((await get(`${unbound}/`)).status, 502, "a name whose port has no server: 502, not 404");
    await again.kill();
    await again.close();
    id = undefined;
    assert.equal((await get(`${url}/hello.txt`)).status, 404, "the name ends with the sandbox");
  } finally {
    try {
      if (id) execFileSync(SBX, ["kill", id], { env: process.env, stdio: "ignore" });
    } catch {
      // already gone
    }
    await stopServer(server).catch(() => {});
    rmSync(local, { recursive: true, force: true });
  }
});
