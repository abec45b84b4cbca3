// The SDK's own examples (the @deno/sandbox README and the product's
// "Create a Sandbox" page), run against `sbx serve` as a user would run
// them, in one sandbox: create with env, memory, labels and a timeout;
// sh with template literals; output; spawn with piped stdin; streamed
// output; files; env; errors; kill. Differences from the hosted product are
// asserted as sbx's (the home directory is /home/app, not /home/sandbox).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, createWriteStream, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Writable } from "node:stream";
import { Client, Sandbox, SandboxCommandError } from "@deno/sandbox";

const T = { timeout: 180_000 };
const run = randomBytes(6).toString("hex");
let sandbox;

before(async () => {
  sandbox = await Sandbox.create({
    env: { GREETING: "hello from the sandbox" },
    memory: "1GiB",
    labels: { example: run },
    timeout: "5m",
  });
});

after(async () => {
  // A "5m" sandbox outlives close(): the README's way to end it early.
  await sandbox?.kill();
});

test("create with env, memory, labels and a timeout", T, async () => {
  assert.equal(await sandbox.sh`echo $GREETING`.text(), "hello from the sandbox\n");
  const mem = await sandbox.deno.eval("Deno.systemMemoryInfo()");
  assert.ok(mem.total > 900 * 2 ** 20 && mem.total <= 2 ** 30, `total ${mem.total}`);
  const listed = await new Client().sandboxes.list({ labels: { example: run } });
  assert.deepEqual(listed.map((s) => s.id), [sandbox.id]);
  assert.equal(listed[0].status, "running");
  assert.equal(await sandbox.sh`pwd`.text(), "/home/app\n");
});

test("template literal commands: escaping, arrays, json()", T, async () => {
  const filename = "file with spaces.txt";
  const content = "Hello, world!";
  await sandbox.sh`echo ${content} > ${filename}`;
  assert.equal(await sandbox.sh`cat ${filename}`.text(), "Hello, world!\n");
  const files = ["file1.txt", "file2.txt", "file3.txt"];
  await sandbox.sh`touch ${files}`;
  await sandbox.sh`rm ${files}`;
  assert.equal(await sandbox.sh`ls file1.txt file2.txt file3.txt 2>/dev/null | wc -l`.text(), "0\n");
  const data = await sandbox.sh`echo '{"count": 42}'`.json();
  assert.equal(data.count, 42);
});

test("errors: SandboxCommandError and noThrow()", T, async () => {
  // A command is a thenable builder, not a Promise: await it in a function.
  await assert.rejects(async () => await sandbox.sh`exit 42`, (error) => {
    assert.ok(error instanceof SandboxCommandError);
    assert.equal(error.code, 42);
    return true;
  });
  const result = await sandbox.sh`exit 1`.noThrow();
  assert.equal(result.status.code, 1);
  assert.equal(result.status.success, false);
});

test("env.set, then a script uses it", T, async () => {
  await sandbox.env.set("API_KEY", "secret-key-123");
  await sandbox.env.set("NODE_ENV", "production");
  const apiKey = await sandbox.sh`echo $API_KEY`.text();
  assert.equal(apiKey.trim(), "secret-key-123");
  assert.equal(await sandbox.sh`node -e 'console.log(process.env.NODE_ENV)'`.text(), "production\n");
});

test("spawn with piped stdin; output()", T, async () => {
  const child = await sandbox.spawn("tr", {
    args: ["a-z", "A-Z"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("piped through the sandbox\n"));
  await writer.close();
  const out = await child.output();
  assert.equal(out.stdoutText, "PIPED THROUGH THE SANDBOX\n");
  assert.equal(out.stderrText, "");
  assert.equal(out.status.success, true);
});

test("files: write and read text and bytes; stream a big file out to a local file", T, async () => {
  await sandbox.fs.writeTextFile("/tmp/hello.txt", "Hello, world!\n");
  assert.equal(await sandbox.fs.readTextFile("/tmp/hello.txt"), "Hello, world!\n");
  const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
  await sandbox.fs.writeFile("/tmp/bytes.bin", bytes);
  assert.deepEqual(new Uint8Array(await sandbox.fs.readFile("/tmp/bytes.bin")), bytes);

  // The README's "Stream command output to local file".
  await sandbox.fs.writeTextFile("big.txt", "#".repeat(5_000_000));
  const child = await sandbox.spawn("cat", { args: ["big.txt"], stdout: "piped" });
  const dir = mkdtempSync(join(tmpdir(), "sbx-sdk-"));
  try {
    const local = join(dir, "big-local-copy.txt");
    await child.stdout.pipeTo(Writable.toWeb(createWriteStream(local)));
    const status = await child.status;
    assert.equal(status.success, true);
    const copy = readFileSync(local, "latin1");
    assert.equal(copy.length, 5_000_000);
    assert.equal(copy, "#".repeat(5_000_000));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// sbx's README, "Use it from TypeScript": its example is run as written,
// by the runtime running this file (node FILE, or deno run -A FILE).
test("the README's TypeScript example runs as written", T, async () => {
  const here = dirname(fileURLToPath(import.meta.url));
  const readme = readFileSync(join(here, "../../README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Use it from TypeScript"));
  const code = section.match(/```js\n([\s\S]*?)```/)[1];
  const file = join(here, `.readme-example-${run}.mjs`);
  writeFileSync(file, code);
  try {
    const args = typeof Deno === "undefined" ? [file] : ["run", "-A", file];
    const { stdout } = await promisify(execFile)(process.execPath, args, { env: process.env });
    assert.match(stdout, /^hello from sbx on [0-9.]+-[0-9]+-cloud-amd64\n/);
    assert.match(stdout, /\nDeno 2\.9\.6\n/);
    assert.match(stdout, /\n6 \* 7 = 42\n$/);
  } finally {
    rmSync(file, { force: true });
  }
});
