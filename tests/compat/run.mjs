// Runs every case in cases/*.mjs against a fresh taskgate server on SQLite,
// then on PostgreSQL when TASKGATE_TEST_DATABASE_URL is set.
//
//   node run.mjs [--include-pending] [--backend sqlite|postgres] [name filter…]

import { readdir } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import pending from "./pending.mjs";
import {
  SetupError,
  compatDir,
  createDatabase,
  dropDatabase,
  findBinary,
  redactUrl,
  startServer,
} from "./lib/server.mjs";

const DEFAULT_TIMEOUT_MS = 20_000;

// The SDK falls back to these; a developer's own values must not leak in.
for (const key of Object.keys(process.env)) {
  if (key.startsWith("TRIGGER_") || key === "VERCEL_GIT_COMMIT_REF") delete process.env[key];
}

const args = process.argv.slice(2);
const includePending = args.includes("--include-pending");
const backendArg = args.includes("--backend") ? args[args.indexOf("--backend") + 1] : undefined;
const filters = args.filter((a, i) => !a.startsWith("--") && args[i - 1] !== "--backend");

const totals = { passed: 0, failed: 0, skipped: 0 };
let active = null; // { server, db } of the backend run in progress, for Ctrl-C

process.on("unhandledRejection", (err) => console.log(`# unhandled rejection: ${err?.stack ?? err}`));
process.on("SIGINT", async () => {
  console.log("# interrupted; stopping the server");
  await cleanup(active, { keepDataDir: true }).catch(() => {});
  process.exit(130);
});

function printFailure(prefix, err) {
  const lines = String(err?.message ?? err).split("\n");
  console.log(`${prefix}: ${lines[0]}`);
  const stack = (err instanceof SetupError ? "" : (err?.stack ?? "")).split("\n")
    .filter((l) => /^\s+at /.test(l) && l.includes(compatDir) && !l.includes("node_modules"))
    .slice(0, 4);
  for (const line of [...lines.slice(1), ...stack]) console.log(`#   ${line}`);
}

function printLogs(server) {
  const logs = (server?.logs() ?? "").trimEnd();
  console.log(`# ---- server output (${logs.length} bytes) ----`);
  if (logs) for (const line of logs.split("\n")) console.log(`# ${line}`);
  console.log("# ---- end of server output ----");
}

async function loadCases() {
  const dir = path.join(compatDir, "cases");
  const files = (await readdir(dir)).filter((f) => f.endsWith(".mjs")).sort();
  const cases = [];
  for (const file of files) {
    const mod = await import(pathToFileURL(path.join(dir, file)));
    cases.push(...mod.default);
  }
  const names = new Set();
  for (const c of cases) {
    if (names.has(c.name)) throw new SetupError(`duplicate case name: ${c.name}`);
    names.add(c.name);
  }
  for (const name of pending) if (!names.has(name)) console.log(`# warning: pending.mjs names an unknown case: ${name}`);
  return cases.filter((c) => filters.length === 0 || filters.some((f) => c.name.includes(f)));
}

/** Run one case with its timeout; resolves to the error, or null when it passed. */
async function runCase(c, ctx) {
  const controller = new AbortController();
  let lastStep = null;
  const t = { ctx, signal: controller.signal, step: (s) => (lastStep = s) };
  const ms = c.timeout ?? DEFAULT_TIMEOUT_MS;
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000}s${lastStep ? ` (${lastStep})` : ""}`)), ms);
  });
  const running = Promise.resolve().then(() => c.run(t));
  running.catch(() => {}); // a late rejection after a timeout is not news
  try {
    await Promise.race([running, timeout]);
    return null;
  } catch (err) {
    return err ?? new Error("rejected without a reason");
  } finally {
    clearTimeout(timer);
    controller.abort(new Error("case finished")); // ends lingering subscriptions
  }
}

async function cleanup(run, { keepDataDir }) {
  if (!run) return;
  // Processes the cases started (a dev CLI) go before the server they talk to.
  for (const stop of (run.ctx?.cleanups ?? []).reverse()) {
    await stop().catch((e) => console.log(`# cleanup failed: ${e.message}`));
  }
  for (const node of run.extraNodes ?? []) await node.stop();
  await run.server?.stop({ keepDataDir });
  if (run.db) await dropDatabase(run.adminUrl, run.db.name);
}

async function runBackend(backend, bin, cases, adminUrl) {
  const run = { server: null, db: null, adminUrl, extraNodes: [] };
  active = run;
  let failed = 0;
  try {
    if (adminUrl) {
      run.db = await createDatabase(adminUrl);
      console.log(`# ${backend}: database ${redactUrl(run.db.url)}`);
    }
    run.server = await startServer({ bin, databaseUrl: run.db?.url });
  } catch (err) {
    printFailure(`not ok - ${backend} - setup`, err);
    if (err.logs !== undefined) printLogs({ logs: () => err.logs });
    if (err.dataDir) console.log(`# ${backend}: data directory kept at ${err.dataDir}`);
    totals.failed++;
    await cleanup(run, { keepDataDir: true }).catch((e) => console.log(`# cleanup failed: ${e.message}`));
    active = null;
    return;
  }
  console.log(`# ${backend}: server at ${run.server.url}`);
  process.env.TRIGGER_API_URL = run.server.url; // realtime stream helpers read it (errors-runs-sdk §5.1)

  const ctx = {
    backend,
    url: run.server.url,
    adminToken: run.server.adminToken,
    cleanups: [],
    // What `taskgate login-link` needs to reach the same database as the server.
    bin,
    dataDir: run.server.dataDir,
    databaseUrl: run.db?.url,
    /** Kills the server (SIGKILL unless told) and starts it again on the same address. */
    restartServer: (options) => run.server.restart(options),
    /** Another node of the same installation (PostgreSQL only): same data directory and database. */
    async secondNode() {
      const node = await startServer({ bin, databaseUrl: run.db?.url, dataDir: run.server.dataDir, label: "[node 2] " });
      run.extraNodes.push(node);
      return node;
    },
  };
  run.ctx = ctx;
  for (const c of cases) {
    if (pending.has(c.name) && !includePending) {
      console.log(`skip - ${c.name} (pending)`);
      totals.skipped++;
      continue;
    }
    if (c.backends && !c.backends.includes(backend)) {
      console.log(`skip - ${backend} - ${c.name} (${c.backends.join(", ")} only)`);
      totals.skipped++;
      continue;
    }
    const dead = run.server.exitReason();
    const err = dead ? new SetupError(`not run: the server ${dead}`) : await runCase(c, ctx);
    if (!err) {
      console.log(`ok - ${backend} - ${c.name}`);
      totals.passed++;
      continue;
    }
    const gone = !dead && run.server.exitReason();
    if (gone) err.message = `${err.message} [server ${gone}]`;
    printFailure(`not ok - ${backend} - ${c.name}`, err);
    totals.failed++;
    failed++;
  }

  const gone = run.server.exitReason();
  if (gone) {
    console.log(`not ok - ${backend} - server stayed up: it ${gone} during the run`);
    totals.failed++;
  }
  if (failed > 0 || gone) {
    printLogs(run.server);
    for (const node of run.extraNodes) printLogs(node);
    console.log(`# ${backend}: data directory kept at ${run.server.dataDir}`);
  }
  await cleanup(run, { keepDataDir: failed > 0 || !!gone }).catch((e) => console.log(`# cleanup failed: ${e.message}`));
  delete process.env.TRIGGER_API_URL;
  active = null;
}

function summary() {
  const { passed, failed, skipped } = totals;
  console.log(skipped > 0 ? `${passed} passed, ${failed} failed, ${skipped} skipped` : `${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}

try {
  const cases = await loadCases();
  const bin = await findBinary();
  console.log(`# taskgate compat: ${bin}, ${cases.length} cases`);
  const backends = [["sqlite", undefined]];
  if (process.env.TASKGATE_TEST_DATABASE_URL) backends.push(["postgres", process.env.TASKGATE_TEST_DATABASE_URL]);
  else console.log("# postgres: skipped, TASKGATE_TEST_DATABASE_URL is not set");
  for (const [backend, adminUrl] of backends) {
    if (backendArg && backendArg !== backend) continue;
    await runBackend(backend, bin, cases, adminUrl);
  }
} catch (err) {
  printFailure("not ok - setup", err);
  totals.failed++;
}
summary();
