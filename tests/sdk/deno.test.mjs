// The unmodified @deno/sandbox SDK (0.13.2) against `sbx serve`: the Deno
// calls (deno.eval, deno.run, the REPL) on the guest's Deno, in one
// sandbox of the default (Debian) image. Node 20 has no `await using`:
// the sandbox is closed in `after`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Sandbox } from "@deno/sandbox";

const T = { timeout: 180_000 };
let sandbox;

before(async () => {
  sandbox = await Sandbox.create();
});

after(async () => {
  await sandbox?.close();
});

test("deno.eval: an expression, the README's snippet, Deno's own API", T, async () => {
  assert.equal(await sandbox.deno.eval("1 + 2"), 3);
  assert.equal(await sandbox.deno.eval(`
    const a = 1;
    const b = 2;
    a + b;
  `), 3);
  const mem = await sandbox.deno.eval("Deno.systemMemoryInfo()");
  assert.ok(mem.total > 700 * 1024 * 1024, `total ${mem.total}`);
  assert.equal(await sandbox.deno.eval("await Promise.resolve(Deno.version.deno)"), "2.9.6");
  await assert.rejects(sandbox.deno.eval("nosuch.property"), (err) => {
    assert.equal(err.constructor.name, "ReferenceError");
    assert.match(err.message, /nosuch is not defined/);
    return true;
  });
});

test("deno.run of a script written with fs.writeTextFile: stdout, stderr, exit code", T, async () => {
  await sandbox.fs.writeTextFile("/tmp/main.ts",
    'const n: number = 6 * 7;\nconsole.log("answer", n, Deno.args.join(","));\n' +
      'console.error("to stderr");\nDeno.exit(3);\n');
  const proc = await sandbox.deno.run({
    entrypoint: "/tmp/main.ts",
    scriptArgs: ["a", "b c"],
    stdout: "piped",
    stderr: "piped",
  });
  const out = await proc.output();
  assert.equal(out.stdoutText, "answer 42 a,b c\n");
  assert.equal(out.stderrText, "to stderr\n");
  assert.deepEqual([out.status.code, out.status.success], [3, false]);
  // It never listened: httpReady says so once it is gone.
  assert.equal(await proc.httpReady, false);

  // Code rather than a file, with its extension.
  const code = await sandbox.deno.run({
    code: "const s: string = typeof Deno.version.deno; console.log(s);",
    extension: "ts",
    stdout: "piped",
  });
  const c = await code.output();
  assert.equal(c.stdoutText, "string\n");
  assert.equal(c.status.success, true);
});

test("deno.run of a server: httpReady, then kill", T, async () => {
  const server = await sandbox.deno.run({
    code: "Deno.serve({ port: 8123, onListen() { console.log('up'); } }, () => new Response('hi'));",
    extension: "js",
    stdout: "piped",
  });
  assert.equal(await server.httpReady, true);
  assert.equal(await sandbox.sh`curl -s http://127.0.0.1:8123/`.text(), "hi");
  // DenoProcess.fetch: the host of the URL is not used, its path is.
  const res = await server.fetch("http://example.invalid/x");
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "hi");
  await server.kill("SIGKILL");
  const status = await server.status;
  assert.deepEqual([status.code, status.signal], [137, "SIGKILL"]);
});

test("deno.run with watch: Deno's watcher restarts on a change in the module graph or a path given; restart events", T, async () => {
  await sandbox.fs.writeTextFile("/tmp/watched.ts",
    'import { word } from "./word.ts";\nconsole.log("run", word);\nsetTimeout(() => {}, 600_000);\n');
  await sandbox.fs.writeTextFile("/tmp/word.ts", 'export const word = "one";\n');
  await sandbox.fs.writeTextFile("/tmp/extra.txt", "1");
  // stderr (where Deno's watcher speaks) not piped: the events come anyway.
  const proc = await sandbox.deno.run({
    entrypoint: "/tmp/watched.ts",
    watch: ["/tmp/extra.txt"],
    stdout: "piped",
    stderr: "null",
  });
  let restarts = 0;
  proc.addEventListener("restart", () => restarts++);
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const waitFor = async (re) => {
    while (!re.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stdout ended before ${re}: ${text}`);
      text += value;
    }
  };
  await waitFor(/run one\n/);
  assert.equal(restarts, 0);
  // A change that comes while Deno restarts may go unseen by its watcher
  // (Deno's own behaviour): written again until the restart comes.
  const touch = async (path, content, want) => {
    for (let i = 0; i < 10 && restarts < want; i++) {
      await sandbox.fs.writeTextFile(path, content + "\n".repeat(i));
      for (let k = 0; k < 40 && restarts < want; k++) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(restarts >= want, `${restarts} restart events, ${want} expected`);
  };
  await touch("/tmp/word.ts", 'export const word = "two";\n', 1);
  await waitFor(/run two\n/);
  await touch("/tmp/extra.txt", "2", 2);
  await waitFor(/run two\n[^]*run two\n/);
  await proc.kill("SIGKILL");
  assert.equal((await proc.status).signal, "SIGKILL");
  reader.releaseLock();

  // A watch that is not a boolean or a list of paths: a TypeError naming the call.
  await assert.rejects(sandbox.deno.run({ entrypoint: "/tmp/watched.ts", watch: ["a,b"] }), (err) => {
    assert.match(err.message, /spawnDeno: watch/);
    return true;
  });
});

test("the REPL keeps its state; call; errors; close", T, async () => {
  const repl = await sandbox.deno.repl({ stdout: "piped" });
  await repl.eval("const x = 42;");
  await repl.eval("const y = 8;");
  assert.equal(await repl.eval("x + y"), 50);
  await repl.eval("function add(a, b) { return a + b; }");
  assert.equal(await repl.call("add", 1, 2), 3);
  assert.equal(await repl.call("(a, b) => a * b", 6, 7), 42);
  assert.deepEqual(await repl.eval("({ list: [1, 'two'], nested: { ok: true } })"),
    { list: [1, "two"], nested: { ok: true } });
  // undefined has no JSON: it arrives as null.
  assert.equal(await repl.eval("undefined"), null);
  await repl.eval("console.log('printed by the REPL')");
  await assert.rejects(repl.eval("throw new RangeError('too far')"), (err) => {
    assert.equal(err.constructor.name, "RangeError");
    assert.equal(err.message, "too far");
    return true;
  });
  await repl.close();
  const out = await repl.output();
  assert.equal(out.stdoutText, "printed by the REPL\n");
  assert.equal(out.status.code, 0);
  // Gone: a clear error, no hang.
  await assert.rejects(repl.eval("1"), /no REPL of pid/);
});
