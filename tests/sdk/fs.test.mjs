// The unmodified @deno/sandbox SDK (0.13.2) against `sbx serve`: the file
// system (by path, streamed, handles, walk, upload/download of files and
// trees), timeouts, the errors of calls that are not served, and what the
// server refuses before the upgrade. One sandbox serves the whole file.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { Sandbox } from "@deno/sandbox";

const T = { timeout: 180_000 };
const run = randomBytes(6).toString("hex");
let sandbox;
let local;

before(async () => {
  sandbox = await Sandbox.create({ timeout: "5m", labels: { suite: "sdk-fs", run } });
  local = mkdtempSync(join(tmpdir(), "sbx-sdk-"));
});

after(async () => {
  if (sandbox) {
    await sandbox.kill().catch(() => {});
    await sandbox.close();
  }
  if (local) rmSync(local, { recursive: true, force: true });
});

test("bytes in and out, mkdir, readDir, stat and lstat", T, async () => {
  const dir = `/tmp/fs-${run}`;
  const bytes = new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff);
  await sandbox.fs.mkdir(`${dir}/sub/deep`, { recursive: true });
  await sandbox.fs.writeFile(`${dir}/sub/data.bin`, bytes);
  assert.deepEqual(await sandbox.fs.readFile(`${dir}/sub/data.bin`), bytes);
  await sandbox.fs.symlink("data.bin", `${dir}/sub/link`);

  const names = [];
  for await (const e of sandbox.fs.readDir(`${dir}/sub`)) names.push(e.name);
  names.sort();
  assert.deepEqual(names, ["data.bin", "deep", "link"]);

  const st = await sandbox.fs.stat(`${dir}/sub/link`);
  assert.equal(st.isFile, true);
  assert.equal(st.size, bytes.length);
  assert.ok(st.mtime instanceof Date);
  const lst = await sandbox.fs.lstat(`${dir}/sub/link`);
  assert.equal(lst.isSymlink, true);
  assert.equal(await sandbox.fs.realPath(`${dir}/sub/link`), `${dir}/sub/data.bin`);

  await assert.rejects(sandbox.fs.mkdir(`${dir}/sub`), (err) => err.code === "EEXIST");
  await assert.rejects(sandbox.fs.stat(`${dir}/nothing`), (err) => err.code === "ENOENT");
});

test("rename, remove, copyFile, chmod, truncate, readLink, utime, makeTempDir/File, open/seek/read/stat", T, async () => {
  const dir = await sandbox.fs.makeTempDir({ prefix: "sdk-" });
  assert.match(dir, /^\/tmp\/sdk-/);
  const file = await sandbox.fs.makeTempFile({ dir, suffix: ".txt" });
  assert.ok(file.startsWith(`${dir}/`) && file.endsWith(".txt"), file);
  await sandbox.fs.writeTextFile(file, "0123456789");
  await sandbox.fs.truncate(file, 4);
  await sandbox.fs.chmod(file, 0o640);
  const st = await sandbox.fs.stat(file);
  assert.equal(st.size, 4);
  assert.equal(st.mode & 0o777, 0o640);
  await sandbox.fs.symlink(file, `${dir}/ln`);
  assert.equal(await sandbox.fs.readLink(`${dir}/ln`), file);
  await sandbox.fs.utime(file, new Date("2001-02-03T04:05:06Z"), new Date("2002-03-04T05:06:07Z"));
  assert.equal((await sandbox.fs.stat(file)).mtime.toISOString(), "2002-03-04T05:06:07.000Z");

  const handle = await sandbox.fs.open(file, { read: true });
  assert.equal(await handle.seek(2, 0), 2);
  const buf = new Uint8Array(10);
  assert.equal(await handle.read(buf), 2);
  assert.equal(new TextDecoder().decode(buf.subarray(0, 2)), "23");
  assert.equal((await handle.stat()).size, 4);
  handle.close();
  await sandbox.fs.remove(file);
  await sandbox.fs.remove(`${dir}/ln`);
  await sandbox.fs.writeTextFile(`${dir}/a`, "one");
  await sandbox.fs.rename(`${dir}/a`, `${dir}/b`);
  await sandbox.fs.copyFile(`${dir}/b`, `${dir}/c`);
  assert.equal(await sandbox.fs.readTextFile(`${dir}/c`), "one");
  await assert.rejects(sandbox.fs.readTextFile(`${dir}/a`), (err) => err.code === "ENOENT");
  await assert.rejects(sandbox.fs.remove(dir), (err) => err.code === "ENOTEMPTY");
  await sandbox.fs.remove(dir, { recursive: true });
  await assert.rejects(sandbox.fs.stat(dir), (err) => err.code === "ENOENT");
});

test("fs.upload and fs.download of a file and a tree (streams, walk, handles)", T, async () => {
  const big = randomBytes(300_000);
  writeFileSync(join(local, "big.bin"), big);
  await sandbox.fs.upload(join(local, "big.bin"), `/tmp/up-${run}.bin`);
  assert.equal(
    await sandbox.sh`sha256sum < /tmp/up-${run}.bin | cut -d' ' -f1`.text(),
    `${execFileSync("sha256sum", [join(local, "big.bin")]).toString().split(" ")[0]}\n`,
  );

  const tree = join(local, "tree");
  mkdirSync(join(tree, "a", "b"), { recursive: true });
  writeFileSync(join(tree, "top.txt"), "top\n");
  writeFileSync(join(tree, "a", "b", "leaf.txt"), "leaf\n");
  symlinkSync("top.txt", join(tree, "link"));
  await sandbox.fs.mkdir(`/tmp/tree-${run}`);
  await sandbox.fs.upload(tree, `/tmp/tree-${run}`);
  assert.equal(await sandbox.fs.readTextFile(`/tmp/tree-${run}/tree/a/b/leaf.txt`), "leaf\n");
  assert.equal((await sandbox.fs.lstat(`/tmp/tree-${run}/tree/link`)).isSymlink, true);

  const entries = [];
  for await (const e of sandbox.fs.walk(`/tmp/tree-${run}/tree`)) entries.push(e);
  assert.equal(entries[0].path, `/tmp/tree-${run}/tree`);
  assert.deepEqual(
    entries.map((e) => e.name).sort(),
    ["a", "b", "leaf.txt", "link", "top.txt", "tree"],
  );

  // Like upload, download puts the tree under the (existing) target directory.
  mkdirSync(join(local, "back"));
  await sandbox.fs.download(`/tmp/tree-${run}/tree`, join(local, "back"));
  assert.equal(readFileSync(join(local, "back", "tree", "a", "b", "leaf.txt"), "utf8"), "leaf\n");
  await sandbox.fs.download(`/tmp/up-${run}.bin`, join(local, "big.back"));
  assert.deepEqual(readFileSync(join(local, "big.back")), big);
});

test("a sandbox of sbx serve shows in sbx ls; extendTimeout", T, async () => {
  const ls = execFileSync(process.env.SBX, ["ls"], { env: process.env }).toString();
  assert.ok(ls.includes(sandbox.id), ls);
  const until = await sandbox.extendTimeout("1m");
  assert.ok(until instanceof Date && until.getTime() > Date.now() + 4 * 60_000, `${until}`);
});

test("extendTimeout twice: the second counts from the end the first set", T, async () => {
  const first = await sandbox.extendTimeout("20m");
  const second = await sandbox.extendTimeout("21m");
  const moved = (second.getTime() - first.getTime()) / 1000;
  assert.ok(moved > 40 && moved < 80, `the second moved the end by ${moved} s, not about 60`);
});

test("SIGKILL gives 137; a call not served answers an error naming it", T, async () => {
  const child = await sandbox.spawn("sleep", { args: ["60"], stdout: "null", stderr: "null" });
  await child.kill("SIGKILL");
  const status = await child.status;
  assert.deepEqual([status.code, status.signal, status.success], [137, "SIGKILL", false]);

  await assert.rejects(sandbox.exposeVscode("/home/app"), (err) => {
    assert.match(err.message, /vscode/);
    return true;
  });
});

// What a guest program sees of the file: flock(1) (flock(2)) and Python's
// lockf (fcntl), each asked without waiting: the exit code says free (0)
// or held (1).
async function guestSees(path) {
  const code = async (cmd) => (await cmd.noThrow()).status.code;
  const py = "import fcntl,sys\nf=open(sys.argv[1],'r+')\ntry: fcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\nexcept OSError: sys.exit(1)";
  return {
    flockEx: await code(sandbox.sh`flock -n ${path} true`),
    flockSh: await code(sandbox.sh`flock -n -s ${path} true`),
    fcntlEx: await code(sandbox.sh`python3 -c ${py} ${path}`),
  };
}
const FREE = { flockEx: 0, flockSh: 0, fcntlEx: 0 };
const EXCLUSIVE = { flockEx: 1, flockSh: 1, fcntlEx: 1 };
const SHARED = { flockEx: 1, flockSh: 0, fcntlEx: 1 };

const settled = (p) => Promise.race([p.then(() => true), new Promise((r) => setTimeout(() => r(false), 1500))]);

test("FsFile.lock/unlock: real flock and fcntl locks in the guest; exclusive vs shared; released on unlock and close", T, async () => {
  const path = `/tmp/lock-${run}`;
  await sandbox.fs.writeTextFile(path, "locked\n");
  const a = await sandbox.fs.open(path, { read: true, write: true });
  const b = await sandbox.fs.open(path);
  const c = await sandbox.fs.open(path);

  await a.lock(true);
  assert.deepEqual(await guestSees(path), EXCLUSIVE);
  // Another handle waits for the exclusive holder, and gets it when a unlocks.
  const shared = b.lock();
  assert.equal(await settled(shared), false, "a shared lock must wait for the exclusive one");
  await a.unlock();
  await shared;
  await c.lock(false); // shared with b: at once
  assert.deepEqual(await guestSees(path), SHARED);
  // An exclusive lock waits for both shared holders; closing them releases.
  const exclusive = a.lock(true);
  assert.equal(await settled(exclusive), false, "an exclusive lock must wait for the shared ones");
  await b.unlock();
  assert.equal(await settled(exclusive), false, "c still holds its shared lock");
  await c.close();
  await exclusive;
  assert.deepEqual(await guestSees(path), EXCLUSIVE);
  await a.close();
  assert.deepEqual(await guestSees(path), FREE);
  await b.close();

  // Contention with a guest process that holds the file with flock(1):
  // the SDK's lock waits until that process lets go.
  const holder = await sandbox.spawn("flock", { args: [path, "sleep", "3"], stdout: "null", stderr: "null" });
  for (let i = 0; i < 100 && (await guestSees(path)).flockEx === 0; i++) await new Promise((r) => setTimeout(r, 100));
  const d = await sandbox.fs.open(path, { read: true, write: true });
  const started = Date.now();
  await d.lock(true);
  const status = await holder.status;
  assert.equal(status.code, 0, "the guest's flock holder ran to its end first");
  assert.ok(Date.now() - started >= 1000, `the lock came after ${Date.now() - started} ms, before the holder ended`);
  await d.unlock();
  await d.unlock(); // nothing held: nothing to do, as with flock(2)
  assert.deepEqual(await guestSees(path), FREE);
  await d.close();
});

test("FsFile.lock: released when the client's connection ends; a lock waiting on a closed handle lets go", T, async () => {
  const path = `/tmp/lock-conn-${run}`;
  await sandbox.fs.writeTextFile(path, "x");
  const other = await Sandbox.connect({ id: sandbox.id });
  const f = await other.fs.open(path, { read: true, write: true });
  await f.lock(true);
  assert.deepEqual(await guestSees(path), EXCLUSIVE);
  // A second handle of this client waits for it, then closes while waiting.
  const g = await sandbox.fs.open(path);
  const waiting = g.lock(true);
  waiting.catch(() => {});
  assert.equal(await settled(waiting), false);
  await g.close();
  await assert.rejects(waiting);
  await other.close();
  let seen;
  for (let i = 0; i < 50; i++) {
    seen = await guestSees(path);
    if (seen.flockEx === 0 && seen.fcntlEx === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(seen, FREE, "the lock of a client that went away is released");
});

test("writable handles: open, create, write, seek, read, truncate, sync, utime, append; umask", T, async () => {
  const dir = await sandbox.fs.makeTempDir({ prefix: "fh-" });
  // The README's FsFile.seek example.
  const f = await sandbox.fs.open(`${dir}/hello.txt`, { read: true, write: true, truncate: true, create: true });
  assert.equal(await f.write(new Uint8Array([0, 1, 2, 3, 4, 5])), 6);
  assert.equal(await f.seek(2, 0), 2);
  const buf = new Uint8Array(100);
  const n = await f.read(buf);
  assert.deepEqual(buf.slice(0, n), new Uint8Array([2, 3, 4, 5]));
  assert.equal(await f.seek(1, 0), 1);
  assert.equal(await f.write(new Uint8Array([9, 9])), 2); // in place, nothing truncated
  await f.sync();
  await f.syncData();
  assert.deepEqual(await sandbox.fs.readFile(`${dir}/hello.txt`), new Uint8Array([0, 9, 9, 3, 4, 5]));
  await f.truncate(3);
  assert.deepEqual(await sandbox.fs.readFile(`${dir}/hello.txt`), new Uint8Array([0, 9, 9]));
  await f.utime(new Date(1_000_000_000_000), new Date(1_000_000_000_000));
  const st = await f.stat();
  assert.equal(st.size, 3);
  assert.equal(st.mtime.getTime(), 1_000_000_000_000);
  await f.close();

  // create() and the README's FsFile.writable example; then an append.
  const g = await sandbox.fs.create(`${dir}/stream.txt`);
  await ReadableStream.from(["hello", " ", "world"]).pipeThrough(new TextEncoderStream()).pipeTo(g.writable);
  await g.close();
  assert.equal(await sandbox.fs.readTextFile(`${dir}/stream.txt`), "hello world");
  const a = await sandbox.fs.open(`${dir}/stream.txt`, { append: true });
  await a.write(new TextEncoder().encode("!"));
  await a.close();
  assert.equal(await sandbox.fs.readTextFile(`${dir}/stream.txt`), "hello world!");

  await assert.rejects(sandbox.fs.open(`${dir}/stream.txt`, { write: true, createNew: true }), (e) => e.code === "EEXIST");
  await assert.rejects(sandbox.fs.open(`${dir}/none`, { write: true }), (e) => e.code === "ENOENT");
  const r = await sandbox.fs.open(`${dir}/stream.txt`);
  await assert.rejects(r.write(new Uint8Array([1])), (e) => e.code === "EBADF");
  await r.close();

  // Reads in sequence (served with a read-ahead) give the file's bytes; a
  // write through the handle is seen by its next read.
  const big = new Uint8Array(3 << 20).map((_, i) => (i * 31 + (i >> 16)) & 0xff);
  await sandbox.fs.writeFile(`${dir}/big`, big);
  const hb = await sandbox.fs.open(`${dir}/big`, { read: true, write: true });
  const parts = [];
  const chunk = new Uint8Array(65536);
  for (let got; (got = await hb.read(chunk)) !== null;) parts.push(Buffer.from(chunk.slice(0, got)));
  assert.ok(Buffer.concat(parts).equals(Buffer.from(big)), "sequential reads differ from the file");
  assert.equal(await hb.seek(70_000, 0), 70_000);
  const part = new Uint8Array(65536);
  await hb.read(part);
  await hb.read(part); // in sequence: a read-ahead now holds these bytes
  await hb.seek(140_000, 0);
  await hb.write(new Uint8Array([1, 2, 3]));
  await hb.seek(140_000, 0);
  const three = new Uint8Array(3);
  assert.equal(await hb.read(three), 3);
  assert.deepEqual(three, new Uint8Array([1, 2, 3]));
  await hb.close();

  // umask: the mask for what the client creates, the old one returned.
  assert.equal(await sandbox.fs.umask(0o077), 0o022);
  await sandbox.fs.writeTextFile(`${dir}/private`, "x");
  await sandbox.fs.mkdir(`${dir}/privdir`);
  await (await sandbox.fs.create(`${dir}/private2`)).close();
  assert.equal((await sandbox.fs.stat(`${dir}/private`)).mode & 0o777, 0o600);
  assert.equal((await sandbox.fs.stat(`${dir}/privdir`)).mode & 0o777, 0o700);
  assert.equal((await sandbox.fs.stat(`${dir}/private2`)).mode & 0o777, 0o600);
  assert.equal(await sandbox.fs.umask(), 0o077);
  assert.equal(await sandbox.fs.umask(0o022), 0o077);
});

test("walk with exts, match, skip, followSymlinks; expandGlob with root, exclude, braces, extglob", T, async () => {
  const dir = await sandbox.fs.makeTempDir({ prefix: "glob-" });
  await sandbox.fs.mkdir(`${dir}/src/lib`, { recursive: true });
  await sandbox.fs.mkdir(`${dir}/node_modules/x`, { recursive: true });
  await sandbox.fs.mkdir(`${dir}/other`);
  for (const f of ["a.ts", "b.js", "src/c.ts", "src/lib/d.ts", "src/lib/e.md", "node_modules/x/f.ts", "other/g.ts"]) {
    await sandbox.fs.writeTextFile(`${dir}/${f}`, f);
  }
  await sandbox.fs.symlink(`${dir}/other`, `${dir}/src/link`);
  const paths = async (it) => {
    const out = [];
    for await (const e of it) out.push(e.path === dir ? "." : e.path.slice(dir.length + 1));
    return out.sort();
  };

  assert.deepEqual(await paths(sandbox.fs.walk(dir, { exts: ["ts"], includeDirs: false, skip: [/node_modules/] })),
    ["a.ts", "other/g.ts", "src/c.ts", "src/lib/d.ts"]);
  assert.deepEqual(await paths(sandbox.fs.walk(dir, { match: [/\/lib\/\w+\.(?:ts|md)$/], includeDirs: false })),
    ["src/lib/d.ts", "src/lib/e.md"]);
  assert.deepEqual(await paths(sandbox.fs.walk(`${dir}/src`, { followSymlinks: true, canonicalize: false, includeDirs: false, exts: [".ts"] })),
    ["src/c.ts", "src/lib/d.ts", "src/link/g.ts"]);
  assert.deepEqual(await paths(sandbox.fs.walk(`${dir}/src`, { followSymlinks: true, includeFiles: false })),
    ["other", "src", "src/lib"]);
  await assert.rejects(paths(sandbox.fs.walk(dir, { match: [/(?<=a)b/] })), (e) => /lookaround/.test(e.message));

  assert.deepEqual(await paths(sandbox.fs.expandGlob("**/*.ts", { root: dir, exclude: ["node_modules"] })),
    ["a.ts", "other/g.ts", "src/c.ts", "src/lib/d.ts"]);
  assert.deepEqual(await paths(sandbox.fs.expandGlob(`${dir}/src/**/*.{ts,md}`)), ["src/c.ts", "src/lib/d.ts", "src/lib/e.md"]);
  assert.deepEqual(await paths(sandbox.fs.expandGlob("*.ts", { root: dir })), ["a.ts"]);
  assert.deepEqual(await paths(sandbox.fs.expandGlob(`${dir}/*.TS`, { caseInsensitive: true })), ["a.ts"]);
  assert.deepEqual(await paths(sandbox.fs.expandGlob(`${dir}/+(a|b).@(ts|js)`)), ["a.ts", "b.js"]);
  assert.deepEqual(await paths(sandbox.fs.expandGlob(`${dir}/s*`)), ["src"]);
  assert.deepEqual(await paths(sandbox.fs.expandGlob(`${dir}/s*`, { includeDirs: false })), []);
  assert.deepEqual(await paths(sandbox.fs.expandGlob(`${dir}/nothing/*.ts`)), []);
});

test("abort: a readFile whose signal fires rejects with AbortError; an unfired signal changes nothing", T, async () => {
  const big = `/tmp/abort-${run}`;
  await sandbox.sh`head -c 60000000 /dev/zero > ${big}`; // streams for seconds under TCG
  const ctl = new AbortController();
  const reading = sandbox.fs.readFile(big, { signal: ctl.signal });
  setTimeout(() => ctl.abort(), 300);
  await assert.rejects(reading, (e) => e.name === "AbortError");
  const quiet = new AbortController();
  assert.equal((await sandbox.fs.readFile("/etc/hostname", { signal: quiet.signal })).length > 0, true);
  await sandbox.fs.writeTextFile(`${big}.txt`, "kept", { signal: quiet.signal });
  assert.equal(await sandbox.fs.readTextFile(`${big}.txt`), "kept");
  await sandbox.fs.remove(big);
});

test("the server refuses a bad config header and a foreign sandbox id", T, async () => {
  const url = process.env.DENO_SANDBOX_ENDPOINT.replace(/^http/, "ws");
  const headers = { authorization: `Bearer ${process.env.DENO_DEPLOY_TOKEN}` };
  const refused = (path, extra) =>
    new Promise((resolve) => {
      const ws = new WebSocket(`${url}${path}`, { headers: { ...headers, ...extra } });
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
  let r = await refused("/api/v3/sandboxes/create", { "x-deno-sandbox-config": "%%%not base64" });
  assert.equal(r.status, 400);
  assert.equal(r.body.code, "INVALID_CONFIG");
  r = await refused("/api/v3/sandboxes/create", {
    "x-deno-sandbox-config": Buffer.from('{"memory_mb":99999,"volumes":[]}').toString("base64"),
  });
  assert.equal(r.status, 400);
  assert.equal(r.body.code, "INVALID_MEMORY");
  r = await refused("/api/v3/sandbox/sbx_loc_00000000000000000000/connect", {});
  assert.equal(r.status, 404);
  assert.equal(r.body.code, "SANDBOX_NOT_FOUND");
});

test("malformed JSON, an unknown method, a client gone mid-output: the server serves on", T, async () => {
  const url = process.env.DENO_SANDBOX_ENDPOINT.replace(/^http/, "ws");
  const ws = new WebSocket(`${url}/api/v3/sandbox/${sandbox.id}/connect`, {
    headers: { authorization: `Bearer ${process.env.DENO_DEPLOY_TOKEN}` },
  });
  const answers = [];
  let waiting = null;
  ws.on("message", (data) => {
    const msg = JSON.parse(data.toString());
    if (msg.method) return; // stream notifications
    answers.push(msg);
    if (waiting) waiting();
  });
  const next = () =>
    new Promise((resolve) => {
      if (answers.length) return resolve(answers.shift());
      waiting = () => {
        waiting = null;
        resolve(answers.shift());
      };
    });
  await new Promise((resolve, reject) => {
    ws.on("open", resolve);
    ws.on("error", reject);
  });
  ws.send("{not json");
  assert.equal((await next()).error.code, -32700);
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "noSuchMethod", params: {} }));
  const unknown = await next();
  assert.equal(unknown.error.code, -32601);
  assert.match(unknown.error.message, /noSuchMethod/);
  ws.send(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "spawn", params: { command: "yes", stdout: "piped", stderr: "null" } }));
  const spawned = await next();
  assert.equal(typeof spawned.result.ok.pid, "number");
  await new Promise((resolve) => setTimeout(resolve, 300));
  ws.terminate(); // gone without a close frame, output still flowing

  const child = await sandbox.spawn("echo", { args: ["still serving"], stdout: "piped", stderr: "null" });
  const out = await child.output();
  assert.equal(out.stdoutText, "still serving\n");
  await assert.rejects(sandbox.fs.stat(`/tmp/none-${run}`), (err) => err.code === "ENOENT");
});
