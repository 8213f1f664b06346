// Engine benchmarks. Only loopback; every phase is bounded in time or count.
//
//   node bench/engine.mjs [--backend sqlite|postgres] [--samples 200] [--skip-cli]
//
// 1. Wake latency: with W workers waiting in their dequeue long polls (W = 1, then 100, each
//    in its own development environment), a run is triggered for one of them; measured
//    server-side from the signal of the run's commit to the dequeue's answer
//    (taskgate_dequeue_wake_seconds, quantiles interpolated within its buckets), and as the
//    client sees it: from the trigger's answer to the dequeue's.
// 2. End to end with the official CLI as the worker (`trigger.dev dev` on tests/compat/dev):
//    trigger → COMPLETED of a no-op task, one run at a time (server timestamps); then runs per
//    second with all runs triggered at once and the default concurrency (10); database
//    statements per executed run (taskgate_db_queries_total, all operations but this
//    script's own polling) and the server's CPU time per run (/proc).
//
// Needs target/release/taskgate (cargo build --release -p taskgate), `npm ci` in
// tests/compat/dev for phase 2, and for postgres TASKGATE_TEST_DATABASE_URL (a fresh
// database is created and dropped with psql).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Client, cpuSeconds, freePort, histogramQuantile, opt, pct, scrapeMetrics, sleep, sumOf } from "./lib.mjs";

const BACKEND = opt("backend", "sqlite");
const SAMPLES = Number(opt("samples", 200));
const SKIP_CLI = process.argv.includes("--skip-cli");
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = process.env.TASKGATE_BIN ?? join(root, "target/release/taskgate");
const devDir = join(root, "tests/compat/dev");
const api = new Client({ maxSockets: Infinity });
const request = (...args) => api.request(...args);



async function ok(promise, what) {
  const r = await promise;
  if (r.status >= 300) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const round = (x, d = 2) => +x.toFixed(d);

const scrape = () => scrapeMetrics(api);

const manifest = (tasks) => ({
  localOnly: true,
  metadata: {
    contentHash: "bench",
    packageVersion: "4.8.3",
    cliPackageVersion: "4.8.3",
    tasks: tasks.map((id) => ({ id, filePath: `src/${id}.ts`, retry: { maxAttempts: 1 } })),
  },
});

/** Phase 1: wake latency with `waiting` workers, one per development environment. */
async function wake(admin, org, waiting) {
  const envs = [];
  for (let i = 0; i < waiting; i++) {
    const project = await ok(request("POST", `/api/v1/orgs/${org.slug}/projects`, admin, { name: `Wake ${waiting}-${i}` }), "project");
    const key = (await ok(request("GET", `/api/v1/projects/${project.externalRef}/dev`, admin), "dev key")).apiKey;
    const worker = await ok(
      request("POST", `/api/v1/projects/${project.externalRef}/background-workers`, key, manifest(["noop"]), "text/plain"),
      "register",
    );
    envs.push({ key, worker: worker.id, arrivals: new Map(), polling: false, stop: false });
  }
  // Each worker long-polls in a loop, as the CLI does, and ends each run it takes at once.
  const loops = envs.map(async (e) => {
    while (!e.stop) {
      e.polling = true;
      const r = await request("POST", "/engine/v1/dev/dequeue", e.key, { currentWorker: e.worker, oldWorkers: [] }, "text/plain");
      e.polling = false;
      for (const m of r.body?.dequeuedMessages ?? []) {
        e.arrivals.set(m.run.friendlyId, r.at);
        await request("POST", `/api/v2/runs/${m.run.friendlyId}/cancel`, e.key, {});
      }
    }
  });
  await sleep(300);
  const before = await scrape();
  const client = [];
  for (let k = 0; k < SAMPLES; k++) {
    const e = envs[k % envs.length];
    while (!e.polling) await sleep(1);
    await sleep(5); // the request reaches the server and registers its wait
    const t = await ok(request("POST", "/api/v1/tasks/noop/trigger", e.key, {}), "trigger").then((b) => b);
    const triggeredAt = performance.now();
    while (!e.arrivals.has(t.id)) await sleep(0.2);
    client.push(Math.max(0, e.arrivals.get(t.id) - triggeredAt));
  }
  const after = await scrape();
  for (const e of envs) e.stop = true;
  // The loops end as their polls time out; nothing waits on them.
  loops.forEach((l) => l.catch(() => {}));
  const name = "taskgate_dequeue_wake_seconds";
  return {
    waitingWorkers: waiting,
    samples: SAMPLES,
    serverMs: {
      p50: round(histogramQuantile(before, after, name, 0.5) * 1000, 3),
      p99: round(histogramQuantile(before, after, name, 0.99) * 1000, 3),
    },
    clientMs: { p50: round(pct(client, 50), 3), p99: round(pct(client, 99), 3) },
  };
}

/** Phase 2: the official CLI executes no-op runs. */
async function endToEnd(serverPid, admin, org) {
  const project = await ok(request("POST", `/api/v1/orgs/${org.slug}/projects`, admin, { name: "E2E" }), "project");
  const ref = project.externalRef;
  const key = (await ok(request("GET", `/api/v1/projects/${ref}/dev`, admin), "dev key")).apiKey;
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
    const retrieve = (id) => ok(request("GET", `/api/v3/runs/${id}`, key), "retrieve");
    // Warm the worker's process pool.
    for (let i = 0; i < 3; i++) {
      const { id } = await ok(request("POST", "/api/v1/tasks/compat-hello/trigger", key, { payload: '{"name":"warm"}' }), "trigger");
      while (!(await retrieve(id)).isCompleted) await sleep(20);
    }
    // Latency: one run at a time; createdAt → finishedAt as the server recorded them.
    const latency = [];
    for (let i = 0; i < SAMPLES; i++) {
      const { id } = await ok(request("POST", "/api/v1/tasks/compat-hello/trigger", key, { payload: '{"name":"lat"}' }), "trigger");
      let run;
      while (!(run = await retrieve(id)).isCompleted) await sleep(10);
      if (run.status !== "COMPLETED") throw new Error(`run ${id} ended ${run.status}`);
      latency.push(new Date(run.finishedAt) - new Date(run.createdAt));
    }
    // Throughput: SAMPLES runs triggered at once, executed with the default concurrency.
    await sleep(1000);
    const before = await scrape();
    const cpuBefore = cpuSeconds(serverPid);
    const ids = await Promise.all(
      Array.from({ length: SAMPLES }, () => ok(request("POST", "/api/v1/tasks/compat-hello/trigger", key, { payload: '{"name":"tp"}' }), "trigger").then((b) => b.id)),
    );
    // Done when none of the environment's runs waits or executes (one list query a check).
    let polls = 0;
    for (;;) {
      polls++;
      const pending = await ok(request("GET", `/api/v1/runs?filter[status]=QUEUED,DEQUEUED,EXECUTING&page[size]=1`, key), "list");
      if (pending.data.length === 0) break;
      await sleep(250);
    }
    const after = await scrape();
    const cpu = cpuSeconds(serverPid) - cpuBefore;
    const runs = await Promise.all(ids.map(retrieve));
    const failed = runs.filter((r) => r.status !== "COMPLETED").length;
    const start = Math.min(...runs.map((r) => +new Date(r.createdAt)));
    const end = Math.max(...runs.map((r) => +new Date(r.finishedAt)));
    const queries = sumOf(after, "taskgate_db_queries_total", (k) => k.includes('operation="list_runs"')) -
      sumOf(before, "taskgate_db_queries_total", (k) => k.includes('operation="list_runs"'));
    const byOperation = {};
    for (const [k, v] of after) {
      const m = /^taskgate_db_queries_total\{.*operation="([^"]+)"/.exec(k);
      if (!m || m[1] === "list_runs") continue;
      const d = v - (before.get(k) ?? 0);
      if (d > 0) byOperation[m[1]] = round(d / SAMPLES, 2);
    }
    return {
      latencyMs: { p50: pct(latency, 50), p99: pct(latency, 99), samples: latency.length },
      throughput: { runs: SAMPLES, failed, seconds: round((end - start) / 1000), runsPerSecond: round(SAMPLES / ((end - start) / 1000), 1) },
      dbQueriesPerRun: round(queries / SAMPLES, 2),
      dbQueriesPerRunByOperation: byOperation,
      benchPolls: polls,
      serverCpuMsPerRun: round((cpu * 1000) / SAMPLES, 2),
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
  // The script polls every run it triggers: buckets too large to refuse anything keep the
  // API rate limiter's cost in every request without it ever answering 429.
  extra.push("--api-rate-limit-refill-rate", "1000000", "--api-rate-limit-interval", "1s", "--api-rate-limit-max", "1000000");
  const server = spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dir, "--dequeue-wait-seconds", "30", ...extra], {
    env: { ...process.env, RUST_LOG: "warn", TASKGATE_LOG_FORMAT: "json" },
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
    const result = { backend: BACKEND, wake: [await wake(admin, org, 1), await wake(admin, org, 100)] };
    if (!SKIP_CLI) result.endToEnd = await endToEnd(server.pid, admin, org);
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
