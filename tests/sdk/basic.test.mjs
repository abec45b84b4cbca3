// The unmodified @deno/sandbox SDK (0.13.2) against `sbx serve`: the basic
// life cycle, processes, files, listing and a refused token. The server is
// chosen by DENO_SANDBOX_ENDPOINT / DENO_DEPLOY_ENDPOINT / DENO_DEPLOY_TOKEN,
// exactly as a user of the hosted product would point the SDK elsewhere.
//
// Node 20 has no `await using`: sandboxes are closed in finally blocks.
// 0.13.2's command-builder modifiers do not chain (each starts from a fresh
// state, and .text() itself is one), so every command uses at most one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  Client,
  ConnectionEstablishmentError,
  InvalidTokenError,
  Sandbox,
  SandboxCommandError,
} from "@deno/sandbox";

const ENV_NAMES = ["DENO_SANDBOX_ENDPOINT", "DENO_DEPLOY_ENDPOINT", "DENO_DEPLOY_TOKEN"];
const missing = ENV_NAMES.filter((name) => !process.env[name]);
if (missing.length > 0) {
  // Without them the SDK would talk to Deno's hosted service.
  throw new Error(`set ${missing.join(", ")} to the sbx serve under test`);
}

const T = { timeout: 180_000 };
const run = randomBytes(6).toString("hex");

async function withSandbox(options, fn) {
  const sandbox = await Sandbox.create(options);
  try {
    return await fn(sandbox);
  } finally {
    await sandbox.close();
  }
}

test("create, sh echo, close", T, async () => {
  await withSandbox({}, async (sandbox) => {
    assert.match(sandbox.id, /^sbx_[a-z]{3}_[0-9a-hjkmnp-z]{20}$/);
    assert.equal(await sandbox.sh`echo hi`.text(), "hi\n");
    // Without .text() the output is inherited: only the status comes back.
    const result = await sandbox.sh`echo inherited`;
    assert.equal(result.status.success, true);
    assert.equal(result.status.code, 0);
    assert.equal(result.stdoutText, null);
  });
});

// docs/protocol/secrets.md: the guest sees a stand-in, never the value
// (the HTTPS substitution itself is tests/system/secrets.sh).
test("create with secrets: a stand-in in the environment, the CA trusted", T, async () => {
  const value = `sk-sdk-${run}`;
  await withSandbox(
    { secrets: { SBX_API_KEY: { hosts: ["api.test"], value } } },
    async (sandbox) => {
      const seen = await sandbox.sh`echo "$SBX_API_KEY"`.text();
      assert.match(seen, /^sbxsecret_[0-9a-f]{40}\n$/);
      assert.ok(!seen.includes(value));
      const env = await sandbox.sh`cat /proc/[0-9]*/environ 2>/dev/null; true`.text();
      assert.ok(!env.includes(value));
      assert.match(await sandbox.sh`head -1 /run/sbx/egress-ca.pem`.text(), /BEGIN CERTIFICATE/);
    },
  );
});

test("create with env: seen by commands and env.get", T, async () => {
  await withSandbox({ env: { SBX_GREETING: "hello world" } }, async (sandbox) => {
    assert.equal(await sandbox.sh`echo "$SBX_GREETING"`.text(), "hello world\n");
    assert.equal(await sandbox.env.get("SBX_GREETING"), "hello world");
    await sandbox.env.set("SBX_LATER", "later");
    assert.equal(await sandbox.sh`echo "$SBX_LATER"`.text(), "later\n");
    const all = await sandbox.env.toObject();
    assert.equal(all.SBX_LATER, "later");
    await sandbox.env.delete("SBX_LATER");
    assert.equal(await sandbox.env.get("SBX_LATER"), undefined);
  });
});

test("spawn with piped stdin, stdout and stderr", T, async () => {
  await withSandbox({}, async (sandbox) => {
    const child = await sandbox.spawn("bash", {
      args: ["-c", "cat; echo to-stderr >&2"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    });
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("line one\n"));
    await writer.write(new TextEncoder().encode("line two\n"));
    await writer.close();
    const out = await child.output();
    assert.equal(out.stdoutText, "line one\nline two\n");
    assert.equal(out.stderrText, "to-stderr\n");
    assert.deepEqual(
      { success: out.status.success, code: out.status.code, signal: out.status.signal },
      { success: true, code: 0, signal: null },
    );
  });
});

test("exit codes, SandboxCommandError and a signalled process", T, async () => {
  await withSandbox({}, async (sandbox) => {
    const soft = await sandbox.sh`exit 3`.noThrow();
    assert.equal(soft.status.success, false);
    assert.equal(soft.status.code, 3);

    // The command builder is a thenable, not a Promise: assert.rejects wants a function.
    await assert.rejects(async () => await sandbox.sh`echo oops >&2; exit 7`, (err) => {
      assert.ok(err instanceof SandboxCommandError);
      assert.equal(err.code, 7);
      assert.match(err.message, /exit code 7/);
      return true;
    });

    const missing = await sandbox.spawn("/nonexistent/binary", { stdout: "null", stderr: "null" })
      .then(() => null, (err) => err);
    assert.ok(missing instanceof Error, "spawning a missing binary fails");

    const sleeper = await sandbox.spawn("sleep", { args: ["60"], stdout: "piped", stderr: "piped" });
    await sleeper.kill();
    const status = await sleeper.status;
    assert.deepEqual(
      { success: status.success, code: status.code, signal: status.signal },
      { success: false, code: 143, signal: "SIGTERM" },
    );
  });
});

test("fs.writeTextFile and readTextFile", T, async () => {
  await withSandbox({}, async (sandbox) => {
    const path = `/tmp/sdk-${run}.txt`;
    const text = "grüße, 世界\nsecond line\n";
    await sandbox.fs.writeTextFile(path, text);
    assert.equal(await sandbox.fs.readTextFile(path), text);
    assert.equal(await sandbox.sh`wc -c < ${path}`.text(), `${Buffer.byteLength(text)}\n`);

    await assert.rejects(sandbox.fs.readTextFile(`/tmp/absent-${run}`), (err) => {
      assert.equal(err.code, "ENOENT");
      return true;
    });
  });
});

test("kill ends the sandbox; connect then fails", T, async () => {
  const sandbox = await Sandbox.create({ timeout: "2m" });
  const id = sandbox.id;
  try {
    await sandbox.kill();
  } finally {
    await sandbox.close();
  }
  await assert.rejects(Sandbox.connect({ id }), (err) => {
    assert.ok(err instanceof ConnectionEstablishmentError, `got ${err}`);
    assert.ok(err.status >= 400 && err.status < 500, `status ${err.status}`);
    return true;
  });
});

test("a duration sandbox survives close and can be reconnected", T, async () => {
  const path = `/tmp/keep-${run}`;
  const first = await Sandbox.create({ timeout: "5m" });
  const id = first.id;
  try {
    await first.fs.writeTextFile(path, "still here");
  } finally {
    await first.close();
  }
  const again = await Sandbox.connect({ id });
  try {
    assert.equal(again.id, id);
    assert.equal(await again.fs.readTextFile(path), "still here");
    assert.equal(await again.sh`echo alive`.text(), "alive\n");
    await again.kill();
  } finally {
    await again.close();
  }
});

test("client.sandboxes.list filters by labels", T, async () => {
  const labels = { suite: "sdk-basic", run };
  await withSandbox({ labels, timeout: "2m" }, async (sandbox) => {
    const client = new Client();
    const found = await client.sandboxes.list({ labels });
    const mine = found.filter((s) => s.id === sandbox.id);
    assert.equal(mine.length, 1, `listed: ${JSON.stringify(found)}`);
    assert.equal(mine[0].status, "running");
    assert.deepEqual(mine[0].labels, labels);
    assert.ok(mine[0].createdAt instanceof Date && !Number.isNaN(mine[0].createdAt.getTime()));
    for (const s of found) assert.equal(s.labels.run, run);

    const none = await client.sandboxes.list({ labels: { run: `${run}-other` } });
    assert.deepEqual(none, []);
    await sandbox.kill();
  });
});

test("a wrong token gets InvalidTokenError", T, async () => {
  const token = `${process.env.DENO_DEPLOY_TOKEN}x${randomBytes(4).toString("hex")}`;
  await assert.rejects(Sandbox.create({ token }), (err) => {
    assert.ok(err instanceof InvalidTokenError, `got ${err}`);
    return true;
  });
  await assert.rejects(new Client({ token }).sandboxes.list(), (err) => {
    assert.equal(err.status, 401);
    assert.equal(err.code, "INVALID_TOKEN");
    return true;
  });
});
