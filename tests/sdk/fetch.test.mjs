// The unmodified @deno/sandbox SDK (0.13.2) against `sbx serve`: fetch,
// an HTTP request made from inside the sandbox (curl in the guest), to a
// server a process of the sandbox runs; DenoProcess.fetch, to a deno.run
// server by its pid. One sandbox of the default (Debian) image.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Sandbox } from "@deno/sandbox";

const T = { timeout: 180_000 };
let sandbox;

// Answers GET /hello with a header and a body, echoes a POST's method,
// content type and body, redirects /moved to /hello, 204 on /empty,
// answers /slow after two minutes.
const server_py = `
import http.server
import time

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/moved":
            self.send_response(302, "Found")
            self.send_header("Location", "/hello")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/slow":
            time.sleep(120)
        if self.path == "/empty":
            self.send_response(204, "Nothing Here")
            self.end_headers()
            return
        body = ("hello from " + self.path + " " + self.headers.get("x-test", "-")).encode()
        self.send_response(200, "Fine")
        self.send_header("X-Answer", "42")
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"]))
        body = (self.command + " " + self.headers.get("Content-Type", "-") + " ").encode() + data
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", 8071), H).serve_forever()
`;

before(async () => {
  sandbox = await Sandbox.create();
  await sandbox.fs.writeTextFile("/tmp/server.py", server_py);
  await sandbox.spawn("python3", { args: ["/tmp/server.py"], stdout: "null", stderr: "null" });
  // Up once curl in the guest gets an answer.
  await sandbox.sh`for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8071/ && exit 0; sleep 0.2; done; exit 1`;
});

after(async () => {
  await sandbox?.close();
});

test("fetch from the sandbox: status, statusText, a header, the body; redirects; 204", T, async () => {
  const res = await sandbox.fetch("http://localhost:8071/hello?q=1", { headers: { "X-Test": "yes" } });
  assert.equal(res.status, 200);
  assert.equal(res.statusText, "Fine");
  assert.equal(res.headers.get("x-answer"), "42");
  assert.equal(await res.text(), "hello from /hello?q=1 yes");

  const followed = await sandbox.fetch("http://localhost:8071/moved");
  assert.equal(followed.status, 200);
  assert.equal(await followed.text(), "hello from /hello -");
  const manual = await sandbox.fetch("http://localhost:8071/moved", { redirect: "manual" });
  assert.equal(manual.status, 302);
  assert.equal(manual.headers.get("location"), "/hello");
  await manual.body?.cancel();

  const empty = await sandbox.fetch("http://localhost:8071/empty");
  assert.equal(empty.status, 204);
  assert.equal(empty.body, null);
  const head = await sandbox.fetch("http://localhost:8071/hello", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), "19");
  assert.equal(head.body, null);
});

test("fetch POST with a body (text, then 300 KiB of bytes) echoes it", T, async () => {
  const res = await sandbox.fetch("http://localhost:8071/echo", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ a: 1 }),
  });
  assert.equal(res.status, 201);
  assert.equal(await res.text(), 'POST application/json {"a":1}');

  const bytes = new Uint8Array(300 * 1024).map((_, i) => (i * 7) % 251);
  const big = await sandbox.fetch("http://localhost:8071/echo", { method: "POST", body: bytes });
  const got = new Uint8Array(await big.arrayBuffer());
  const prefix = new TextEncoder().encode("POST - ");
  assert.equal(got.length, prefix.length + bytes.length);
  assert.deepEqual(got.subarray(0, prefix.length), prefix);
  assert.ok(Buffer.from(got.subarray(prefix.length)).equals(Buffer.from(bytes)), "the body came back");
});

test("DenoProcess.fetch reaches a deno.run server by its pid", T, async () => {
  const server = await sandbox.deno.run({
    code: "Deno.serve({ port: 8072, onListen() {} }, async (req) => " +
      "new Response(req.method + ' ' + new URL(req.url).pathname + ' ' + await req.text(), " +
      "{ headers: { 'x-from': 'deno' } }));",
    extension: "js",
  });
  assert.equal(await server.httpReady, true);
  const res = await server.fetch("https://ignored.example/some/path");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-from"), "deno");
  assert.equal(await res.text(), "GET /some/path ");
  const post = await server.fetch("http://x/p", { method: "PUT", body: "data" });
  assert.equal(await post.text(), "PUT /p data");
  await server.kill("SIGKILL");
  await server.status;
  // Gone: an error naming the call and the process.
  await assert.rejects(server.fetch("http://x/"), /fetch http:\/\/x\/: no process \d+ in the sandbox/);
});

test("fetch errors name the call: a refused port; an abort stops a slow request", T, async () => {
  await assert.rejects(sandbox.fetch("http://localhost:1/"), (err) => {
    assert.match(err.message, /fetch http:\/\/localhost:1\/.*(refused|connect)/i);
    return true;
  });

  const ac = new AbortController();
  const t0 = Date.now();
  setTimeout(() => ac.abort(), 1000);
  await assert.rejects(sandbox.fetch("http://localhost:8071/slow", { signal: ac.signal }), (err) => {
    assert.equal(err.name, "AbortError");
    return true;
  });
  assert.ok(Date.now() - t0 < 30_000, `the abort took ${Date.now() - t0} ms`);
  // The sandbox serves on.
  assert.equal(await (await sandbox.fetch("http://localhost:8071/hello")).text(), "hello from /hello -");
});
