// bench/sdk.mjs: the @deno/sandbox SDK (tests/sdk's pinned copy) through
// `sbx serve` against the CLI on the same sandbox, alternated A B A B in
// one run; prints markdown rows and key-value lines for bench/sdk.sh.
// Environment: SDK_MOD (the SDK's esm/mod.js), SBX, DENO_SANDBOX_ENDPOINT,
// DENO_DEPLOY_TOKEN, SDK_EXEC_N (100), SDK_FS_MIB (256), SDK_FS_RUNS (3),
// SDK_BOOT_RUNS (3), SDK_IMAGE (debian), BENCH_TMP (a scratch directory).
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const { Sandbox } = await import(pathToFileURL(process.env.SDK_MOD).href);
const SBX = process.env.SBX;
const EXEC_N = Number(process.env.SDK_EXEC_N ?? 100);
const FS_MIB = Number(process.env.SDK_FS_MIB ?? 256);
const FS_RUNS = Number(process.env.SDK_FS_RUNS ?? 3);
const BOOT_RUNS = Number(process.env.SDK_BOOT_RUNS ?? 3);
const IMAGE = process.env.SDK_IMAGE ?? "debian";
const TMP = process.env.BENCH_TMP;

const now = () => Number(process.hrtime.bigint()) / 1e6; // ms
const cli = (...args) => execFileSync(SBX, args, { env: process.env, stdio: ["ignore", "pipe", "pipe"] }).toString();
const sorted = (a) => [...a].sort((x, y) => x - y);
const median = (a) => sorted(a)[Math.floor(a.length / 2)];
const p99 = (a) => sorted(a)[Math.min(a.length - 1, Math.ceil(a.length * 0.99) - 1)];
const ms = (v) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`);

// A B A B ...: per pair, time of a and of b; the ratio pair by pair.
async function pairs(n, a, b) {
  const ta = [], tb = [], r = [];
  for (let i = 0; i < n; i++) {
    let t = now();
    await a(i);
    const da = now() - t;
    t = now();
    await b(i);
    const db = now() - t;
    ta.push(da);
    tb.push(db);
    r.push(da / db);
  }
  return { ta, tb, r };
}

function rows(what, n, aName, bName, { ta, tb, r }, kv) {
  console.log(`| ${what} | ${aName} | ${n} | ${ms(median(ta))} | ${ms(p99(ta))} | ${median(r).toFixed(2)}× (p99 ${p99(r).toFixed(2)}×) |`);
  console.log(`| ${what} | ${bName} | ${n} | ${ms(median(tb))} | ${ms(p99(tb))} | 1 |`);
  console.error(`KV ${kv} ${median(ta).toFixed(3)} ${median(tb).toFixed(3)} ${median(r).toFixed(3)}`);
}

console.log("| measurement | side | N | median | p99 | SDK / CLI (pairs: median, p99) |");
console.log("|---|---|---|---|---|---|");

// The goal: the SDK's `sh` of `true` within 1.5× of `sbx exec`.
const GOAL = 1.5;
let goal;
const sandbox = await Sandbox.create({ timeout: "30m", labels: { bench: "sdk" } });
try {
  // 1. a command: the SDK's sh runs `bash -c 'true'`; the CLI runs the same.
  await sandbox.sh`true`;
  cli("exec", sandbox.id, "--", "bash", "-c", "true");
  const exec = await pairs(EXEC_N, () => sandbox.sh`true`, () => cli("exec", sandbox.id, "--", "bash", "-c", "true"));
  rows("`true` (as `bash -c true`), same sandbox", EXEC_N, "SDK `sandbox.sh`", "`sbx exec` (a CLI process per call)", exec, "sdk.exec");
  goal = median(exec.r);

  // 2. files: FS_MIB of random bytes up and down, over a file already there.
  const local = join(TMP, "blob");
  writeFileSync(local, randomBytes(FS_MIB << 20));
  const remote = "/home/app/bench-blob";
  cli("cp", local, `${sandbox.id}:${remote}`);
  rows(`upload ${FS_MIB} MiB`, FS_RUNS, "SDK `fs.upload`", "`sbx cp` into the sandbox",
    await pairs(FS_RUNS, () => sandbox.fs.upload(local, remote), () => cli("cp", local, `${sandbox.id}:${remote}`)), "sdk.upload");
  rows(`download ${FS_MIB} MiB`, FS_RUNS, "SDK `fs.download`", "`sbx cp` out of the sandbox",
    await pairs(FS_RUNS, () => sandbox.fs.download(remote, join(TMP, "down-sdk")), () => cli("cp", `${sandbox.id}:${remote}`, join(TMP, "down-cli"))), "sdk.download");
  rmSync(local);
} finally {
  await sandbox.kill().catch(() => {});
  await sandbox.close();
}

// 3. create -> first command; the kill after each is not timed.
{
  const ta = [], tb = [], r = [];
  for (let i = 0; i < BOOT_RUNS; i++) {
    let t = now();
    const s = await Sandbox.create();
    await s.sh`true`;
    const da = now() - t;
    await s.kill();
    await s.close();
    t = now();
    // The SDK's default memory, 1280 MiB (the CLI's is 1024).
    const id = cli("create", "--image", IMAGE, "--memory", "1280", "--lifetime", "10m").trim().split("\n").pop();
    cli("exec", id, "--", "bash", "-c", "true");
    const db = now() - t;
    cli("kill", id);
    ta.push(da);
    tb.push(db);
    r.push(da / db);
  }
  rows("create → first command (`true`)", BOOT_RUNS, "SDK `Sandbox.create` + `sh`", "`sbx create` + `sbx exec`", { ta, tb, r }, "sdk.boot");
}
console.log();
console.log(`Goal (issue 17): the SDK's \`sh\` of \`true\` at most ${GOAL}× \`sbx exec\`: ` +
  `${goal <= GOAL ? "met" : "not met"} (median pair ratio ${goal.toFixed(2)}×).`);
