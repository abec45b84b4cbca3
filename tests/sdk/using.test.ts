// Under Deno only (tests/run.sh's sdk-deno): `await using`, as the SDK's
// README and the product's documentation write it, disposes the sandbox
// and the REPL at the end of their block. The server is chosen by the same
// three environment variables as under Node.
import assert from "node:assert/strict";
import { Sandbox } from "@deno/sandbox";

// The SDK keeps a keep-alive timer per socket: Deno's op sanitizer would
// count it against the test that opened the socket.
const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({ name: "await using: a sandbox and a REPL disposed at the end of their block", ...opts },
  async () => {
    let kept: Sandbox;
    {
      await using sandbox = await Sandbox.create();
      kept = sandbox;
      assert.equal(await sandbox.sh`echo hi from ${"Deno's"} SDK`.text(), "hi from Deno's SDK\n");
      {
        await using repl = await sandbox.deno.repl();
        await repl.eval("const x = 42;");
        await repl.eval("const y = 8;");
        assert.equal(await repl.eval("x + y"), 50);
      }
      assert.equal(await sandbox.deno.eval("[1, 2, 3].map((n) => n * 2)").then(JSON.stringify),
        "[2,4,6]");
    }
    // Disposed: the socket is closed and calls are refused at once.
    await assert.rejects(kept.sh`true`.text());
  });
