// Waits benchmark. Only loopback; every phase is bounded in time or count.
//
//   node bench/waits.mjs [--backend sqlite|postgres] [--samples 100] [--timers 10000] [--skip-cli]
//
// 1. Resume latency, with the official CLI as the worker (`trigger.dev dev` on
//    tests/compat/dev): a run waits for a token; the bench completes the token, one run at a
//    time. Server side: the complete request (whose transaction completes the token and writes
//    the run's continuation snapshot), from taskgate_http_request_duration_seconds; and from
//    that commit to the run:notify frame sent on the worker's socket
//    (taskgate_run_notify_seconds). Client side: from the complete's answer to the run's
//    latest snapshot showing it continued, polled.
// 2. Statements per triggerAndWait pair, without the CLI (the dev routes, as the CLI calls
//    them): a parent executes; each pair triggers a child with parentRunId and
//    resumeParentOnCompletion, dequeues, starts and completes it, which continues the parent.
//    taskgate_db_queries_total over the pairs, per pair and per operation.
// 3. --timers runs waiting on wait.for at once, without the CLI: each is dequeued, started and
//    blocked until 150 s after it began to wait. Then, while nothing is due: the server's CPU
//    over 20 s (idle, all of them waiting) and its resident memory against before they were
//    made; then, as they fire: each run's lateness, from the time it asked for to its
//    continuation snapshot (the server's own timestamps).
//
// Needs target/release/taskgate (cargo build --release -p taskgate), `npm ci` in
// tests/compat/dev for phase 1, and for postgres TASKGATE_TEST_DATABASE_URL (a fresh
// database is created and dropped with psql).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Client, cpuSeconds, freePort, histogramQuantile, opt, pct, rssBytes, scrapeMetrics, sleep, sumOf } from "./lib.mjs";

const BACKEND = opt("backend", "sqlite");
const SAMPLES = Number(opt("samples", 100));
const TIMERS = Number(opt("timers", 10_000));
const SKIP_CLI = process.argv.includes("--skip-cli");
const WAIT_SECONDS = Number(opt("wait-seconds", 150));
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = process.env.TASKGATE_BIN ?? join(root, "target/release/taskgate");
const devDir = join(root, "tests/compat/dev");
const api = new Client({ maxSockets: 64 });
const request = (...args) => api.request(...args);
const scrape = () => scrapeMetrics(api);
const round = (x, d = 2) => +x.toFixed(d);

async function ok(promise, what) {
  const r = await promise;
  if (r.status >= 300) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A new project's development key and ref. */
async function devProject(admin, org, name) {
  const project = await ok(request("POST", `/api/v1/orgs/${org.slug}/projects`, admin, { name }), "project");
  const key = (await ok(request("GET", `/api/v1/projects/${project.externalRef}/dev`, admin), "dev key")).apiKey;
  return { ref: project.externalRef, key };
}

/** Registers a worker of `tasks`; answers its id. */
async function register(ref, key, tasks) {
  const manifest = {
    localOnly: true,
    metadata: { contentHash: "bench", packageVersion: "4.8.3", tasks: tasks.map((id) => ({ id, filePath: `src/${id}.ts` })) },
  };
  return (await ok(request("POST", `/api/v1/projects/${ref}/background-workers`, key, manifest), "register")).id;
}

/** Dequeues the next run and starts its attempt, as the CLI does; answers the start. */
async function startNext(key, worker) {
  for (;;) {
    const d = await ok(request("POST", "/engine/v1/dev/dequeue", key, { currentWorker: worker }), "dequeue");
    const m = d.dequeuedMessages[0];
    if (!m) continue;
    return ok(request("POST", `/engine/v1/dev/runs/${m.run.friendlyId}/snapshots/${m.snapshot.friendlyId}/attempts/start`, key, {}), "start");
  }
}

const latest = (key, id) => ok(request("GET", `/engine/v1/dev/runs/${id}/snapshots/latest`, key), "snapshot").then((b) => b.execution);

/** Phase 1: resume latency with the official CLI. */
async function resume(admin, org) {
  const { ref, key } = await devProject(admin, org, "Resume");
  const home = mkdtempSync(join(tmpdir(), "taskgate-bench-cli-"));
  const cli = spawn(process.execPath, [join(devDir, "node_modules/trigger.dev/dist/esm/index.js"), "dev", "--skip-platform-notifications", "--skip-update-check", "--skip-mcp-install", "--skip-rules-install"], {
    cwd: devDir,
    env: { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: home, TRIGGER_ACCESS_TOKEN: admin, TRIGGER_API_URL: api.base, TASKGATE_COMPAT_PROJECT_REF: ref, AI_AGENT: "taskgate-bench" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  cli.stdout.on("data", (c) => (out += c));
  cli.stderr.on("data", (c) => (out += c));
  try {
    const ready = Date.now() + 120_000;
    while (!/Local worker ready/.test(out)) {
      if (Date.now() > ready) throw new Error(`the CLI did not get ready:\n${out.slice(-2000)}`);
      await sleep(200);
    }
    const sample = async () => {
      const token = await ok(request("POST", "/api/v1/waitpoints/tokens", key, {}), "token");
      const { id } = await ok(request("POST", "/api/v1/tasks/wait-token/trigger", key, { payload: JSON.stringify({ token: token.id }) }), "trigger");
      let s;
      while ((s = await latest(key, id)).snapshot.executionStatus !== "EXECUTING_WITH_WAITPOINTS") await sleep(5);
      const done = await ok(request("POST", `/api/v1/waitpoints/tokens/${token.id}/complete`, key, { data: { n: 1 } }), "complete");
      const answered = performance.now();
      if (!done.success) throw new Error("complete failed");
      while ((s = await latest(key, id)).snapshot.executionStatus !== "EXECUTING" && s.snapshot.executionStatus !== "FINISHED") await sleep(1);
      const seen = performance.now() - answered;
      for (;;) {
        const run = await ok(request("GET", `/api/v3/runs/${id}`, key), "retrieve");
        if (run.isCompleted) {
          if (run.status !== "COMPLETED") throw new Error(`run ${id} ended ${run.status}`);
          break;
        }
        await sleep(20);
      }
      return seen;
    };
    for (let i = 0; i < 3; i++) await sample(); // warm the worker's process pool
    const before = await scrape();
    const client = [];
    for (let i = 0; i < SAMPLES; i++) client.push(await sample());
    const after = await scrape();
    const route = 'route="/api/v1/waitpoints/tokens/{waitpointFriendlyId}/complete"';
    const ms = (name, q, labels) => round(histogramQuantile(before, after, name, q, labels) * 1000, 3);
    return {
      samples: SAMPLES,
      completeRequestMs: { p50: ms("taskgate_http_request_duration_seconds", 0.5, route), p99: ms("taskgate_http_request_duration_seconds", 0.99, route) },
      commitToRunNotifyMs: { p50: ms("taskgate_run_notify_seconds", 0.5), p99: ms("taskgate_run_notify_seconds", 0.99) },
      clientSeesContinuationMs: { p50: round(pct(client, 50), 1), p99: round(pct(client, 99), 1) },
    };
  } finally {
    try {
      process.kill(-cli.pid, "SIGTERM");
    } catch {}
    await sleep(500);
    try {
      process.kill(-cli.pid, "SIGKILL");
    } catch {}
    rmSync(home, { recursive: true, force: true });
  }
}

/** Phase 2: statements per triggerAndWait pair. */
async function statements(admin, org) {
  const { ref, key } = await devProject(admin, org, "Pairs");
  const worker = await register(ref, key, ["parent", "child"]);
  await ok(request("POST", "/api/v1/tasks/parent/trigger", key, {}), "trigger parent");
  const parent = (await startNext(key, worker)).run.friendlyId;
  const pairs = Math.min(SAMPLES, 200);
  const before = await scrape();
  for (let i = 0; i < pairs; i++) {
    await ok(request("POST", "/api/v1/tasks/child/trigger", key, { options: { parentRunId: parent, resumeParentOnCompletion: true } }), "trigger child");
    const child = await startNext(key, worker);
    const c = child.run.friendlyId;
    await ok(request("POST", `/engine/v1/dev/runs/${c}/snapshots/${child.snapshot.friendlyId}/attempts/complete`, key, { completion: { id: c, ok: true, output: "{}", outputType: "application/json" } }), "complete child");
    const s = await latest(key, parent);
    if (s.snapshot.executionStatus !== "EXECUTING" || s.completedWaitpoints.length !== 1) throw new Error(`parent not continued: ${JSON.stringify(s)}`);
  }
  const after = await scrape();
  const ignore = (k) => k.includes('operation="get_run_from_replica"') || k.includes('operation="get_run"');
  const byOperation = {};
  for (const [k, v] of after) {
    const m = /^taskgate_db_queries_total\{.*operation="([^"]+)"/.exec(k);
    if (!m || ignore(k)) continue;
    const d = v - (before.get(k) ?? 0);
    if (d > 0) byOperation[m[1]] = round(d / pairs, 2);
  }
  const total = sumOf(after, "taskgate_db_queries_total", ignore) - sumOf(before, "taskgate_db_queries_total", ignore);
  return { pairs, statementsPerPair: round(total / pairs, 2), byOperation, note: "the bench's own snapshot reads (get_run*) excluded" };
}

/** Phase 3: many runs waiting on timers. */
async function timers(admin, org, pid) {
  const { ref, key } = await devProject(admin, org, "Timers");
  const worker = await register(ref, key, ["sleeper"]);
  await sleep(2000);
  const rssBefore = rssBytes(pid);
  const made = performance.now();
  const asked = new Map(); // run → the time it asked for
  const lanes = 16;
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < TIMERS) {
        next++;
        await ok(request("POST", "/api/v1/tasks/sleeper/trigger", key, {}), "trigger");
        const started = await startNext(key, worker);
        const run = started.run.friendlyId;
        const date = new Date(Date.now() + WAIT_SECONDS * 1000);
        await ok(request("POST", `/engine/v1/runs/${run}/wait/duration`, key, { date }), "wait");
        asked.set(run, date.getTime());
      }
    }),
  );
  const makingSeconds = (performance.now() - made) / 1000;
  if (makingSeconds + 25 > WAIT_SECONDS) throw new Error(`making ${TIMERS} waits took ${round(makingSeconds)} s: no idle window before they fire`);
  // Idle: every run waits, nothing is due for a while.
  await sleep(2000);
  const cpu0 = cpuSeconds(pid);
  const idleFrom = performance.now();
  await sleep(20_000);
  const idleSeconds = (performance.now() - idleFrom) / 1000;
  const idleCpu = cpuSeconds(pid) - cpu0;
  const rssWaiting = rssBytes(pid);
  // Firing: wait until the last one is due, then read each continuation's time.
  const lastDue = Math.max(...asked.values());
  await sleep(Math.max(0, lastDue - Date.now()) + 3000);
  const lateness = [];
  let notContinued = 0;
  const ids = [...asked.keys()];
  for (let i = 0; i < ids.length; i += 64) {
    await Promise.all(
      ids.slice(i, i + 64).map(async (id) => {
        const s = await latest(key, id);
        if (s.snapshot.executionStatus !== "EXECUTING" || s.completedWaitpoints.length !== 1) {
          notContinued++;
          return;
        }
        lateness.push(new Date(s.snapshot.createdAt).getTime() - asked.get(id));
      }),
    );
  }
  return {
    waitingRuns: TIMERS,
    secondsToMakeThem: round(makingSeconds, 1),
    idleCpuPercent: round((idleCpu / idleSeconds) * 100, 2),
    idleWindowSeconds: round(idleSeconds, 1),
    rssMiB: { before: round(rssBefore / 1048576, 1), allWaiting: round(rssWaiting / 1048576, 1) },
    bytesPerWaitingRun: round((rssWaiting - rssBefore) / TIMERS, 0),
    notContinued,
    latenessMs: { p50: pct(lateness, 50), p99: pct(lateness, 99), max: Math.max(...lateness) },
  };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "taskgate-bench-"));
  let db;
  const extra = [];
  const pgUrl = process.env.TASKGATE_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  if (BACKEND === "postgres") {
    db = `taskgate_bench_${process.pid}`;
    execFileSync("psql", [pgUrl, "-qc", `CREATE DATABASE ${db}`]);
    extra.push("--database-url", pgUrl.replace(/\/[^/]*$/, `/${db}`));
  }
  const port = await freePort();
  api.base = `http://127.0.0.1:${port}`;
  // Buckets too large to refuse anything: the limiter's cost stays, its 429s do not.
  extra.push("--api-rate-limit-refill-rate", "1000000", "--api-rate-limit-interval", "1s", "--api-rate-limit-max", "1000000");
  const server = spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dir, "--dequeue-wait-seconds", "1", ...extra], {
    env: { ...process.env, RUST_LOG: process.env.BENCH_RUST_LOG ?? "warn", TASKGATE_LOG_FORMAT: "json" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await request("GET", "/healthz")).status === 200) break;
      } catch {}
      if (i > 100) throw new Error("server did not start");
      await sleep(100);
    }
    const admin = readFileSync(join(dir, "admin-token"), "utf8").trim();
    const org = await ok(request("POST", "/api/v1/orgs", admin, { title: "Bench" }), "org");
    const result = { backend: BACKEND };
    if (!SKIP_CLI) result.resume = await resume(admin, org);
    result.triggerAndWait = await statements(admin, org);
    result.timers = await timers(admin, org, server.pid);
    console.log(JSON.stringify(result, null, 1));
  } finally {
    server.kill("SIGKILL");
    api.agent.destroy();
    rmSync(dir, { recursive: true, force: true });
    if (db) {
      await sleep(300);
      execFileSync("psql", [pgUrl, "-qc", `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]);
    }
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
