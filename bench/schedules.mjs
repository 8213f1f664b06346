// Schedules benchmark. Only loopback; every phase is bounded in time or count.
//
//   node bench/schedules.mjs [--backend sqlite|postgres] [--schedules 10000]
//
// N imperative schedules of one development environment (its CLI kept "connected" by the
// presence stream the CLI holds), all naming the same minute of the day, so that every one
// is due at the same nominal time:
// 1. making them: POST /api/v1/schedules, 16 at a time (what `schedules.create` sends);
// 2. idle, none due: the server's CPU over up to 20 s (against 10 s before any schedule
//    existed), and its resident memory against before they were made;
// 3. the minute comes: each fire's lateness, from the nominal time to its run's creation
//    (the server's own timestamp, in the transaction that commits the run), how long until
//    the last one, and taskgate_db_queries_total per fire (trigger included).
//
// Needs target/release/taskgate (cargo build --release -p taskgate), and for postgres
// TASKGATE_TEST_DATABASE_URL (a fresh database is created and dropped with psql).
import http from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Client, UNLIMITED, cpuSeconds, freshPostgres, opt, pct, rssBytes, scrapeMetrics, sleep, startServer, sumOf } from "./lib.mjs";

const BACKEND = opt("backend", "sqlite");
const SCHEDULES = Number(opt("schedules", 10_000));
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = process.env.TASKGATE_BIN ?? join(root, "target/release/taskgate");
const api = new Client({ maxSockets: 64 });
const request = (...args) => api.request(...args);
const round = (x, d = 2) => +x.toFixed(d);
/** A pessimistic creation rate, to choose a minute they can all be made before. */
const ASSUMED_CREATES_PER_SECOND = 300;

async function ok(promise, what) {
  const r = await promise;
  if (r.status >= 300) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Holds the environment's presence stream open, opening another when one ends after its
 * 30 s (as `trigger.dev dev` does); the answer stops it. */
function presence(key) {
  let stopped = false;
  let req;
  const open = () => {
    if (stopped) return;
    req = http.get(`${api.base}/engine/v1/dev/presence`, { headers: { authorization: `Bearer ${key}` } }, (res) => {
      res.resume();
      res.on("end", open);
    });
    req.on("error", () => setTimeout(open, 500));
  };
  open();
  return () => {
    stopped = true;
    req.destroy();
  };
}

/** Every run of `task`, oldest first, through the runs list. */
async function allRuns(key, task) {
  const out = [];
  let after;
  for (;;) {
    const q = `filter[taskIdentifier]=${task}&page[size]=100${after ? `&page[after]=${after}` : ""}`;
    const page = await ok(request("GET", `/api/v1/runs?${q}`, key), "runs");
    out.push(...page.data);
    after = page.pagination?.next;
    if (!after || page.data.length === 0) return out;
  }
}

async function bench(pid) {
  const admin = readFileSync(join(api.dir, "admin-token"), "utf8").trim();
  const org = await ok(request("POST", "/api/v1/orgs", admin, { title: "Bench" }), "org");
  const project = await ok(request("POST", `/api/v1/orgs/${org.slug}/projects`, admin, { name: "Schedules" }), "project");
  const key = (await ok(request("GET", `/api/v1/projects/${project.externalRef}/dev`, admin), "dev key")).apiKey;
  const manifest = {
    localOnly: true,
    metadata: { contentHash: "bench", packageVersion: "4.8.3", tasks: [{ id: "tick", filePath: "src/tick.ts", triggerSource: "schedule" }] },
  };
  await ok(request("POST", `/api/v1/projects/${project.externalRef}/background-workers`, key, manifest), "register");
  const stopPresence = presence(key);
  await sleep(2000);
  // The same idle window with no schedule at all: what the rest of the server costs.
  const base0 = cpuSeconds(pid);
  const baseFrom = performance.now();
  await sleep(10_000);
  const baselineCpuPercent = round(((cpuSeconds(pid) - base0) / ((performance.now() - baseFrom) / 1000)) * 100, 2);

  // The minute they all name: after they can all be made, plus an idle window.
  const margin = SCHEDULES / ASSUMED_CREATES_PER_SECOND + 40;
  const target = new Date(Math.ceil((Date.now() + margin * 1000) / 60_000) * 60_000);
  const cron = `${target.getUTCMinutes()} ${target.getUTCHours()} * * *`;
  const rssBefore = rssBytes(pid);
  const madeFrom = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < SCHEDULES) {
        const i = next++;
        await ok(request("POST", "/api/v1/schedules", key, { task: "tick", cron, deduplicationKey: `s${i}` }), "create");
      }
    }),
  );
  const makingSeconds = (performance.now() - madeFrom) / 1000;
  const untilDue = target.getTime() - Date.now();
  if (untilDue < 8000) throw new Error(`making ${SCHEDULES} schedules took ${round(makingSeconds)} s: no idle window before they fire`);

  // Idle: all of them active, none due.
  await sleep(2000);
  const idleFor = Math.min(20_000, untilDue - 6000);
  const cpu0 = cpuSeconds(pid);
  const idleFrom = performance.now();
  await sleep(idleFor);
  const idleSeconds = (performance.now() - idleFrom) / 1000;
  const idleCpu = cpuSeconds(pid) - cpu0;
  const rssAll = rssBytes(pid);

  // Firing: statements from just before the minute until every run exists.
  await sleep(Math.max(0, target.getTime() - Date.now() - 1000));
  const before = await scrapeMetrics(api);
  const cpuFire0 = cpuSeconds(pid);
  const deadline = Date.now() + 600_000;
  let fired = 0;
  for (;;) {
    const m = await scrapeMetrics(api);
    fired = (m.get('taskgate_schedule_fires_total{outcome="triggered"}') ?? 0) - (before.get('taskgate_schedule_fires_total{outcome="triggered"}') ?? 0);
    if (fired >= SCHEDULES || Date.now() > deadline) break;
    await sleep(250);
  }
  const after = await scrapeMetrics(api);
  const fireCpu = cpuSeconds(pid) - cpuFire0;
  stopPresence();
  const queries = sumOf(after, "taskgate_db_queries_total") - sumOf(before, "taskgate_db_queries_total");
  const runs = await allRuns(key, "tick");
  const lateness = runs.map((r) => new Date(r.createdAt).getTime() - target.getTime());
  return {
    schedules: SCHEDULES,
    secondsToMakeThem: round(makingSeconds, 1),
    idle: {
      cpuPercent: round((idleCpu / idleSeconds) * 100, 2),
      cpuPercentWithoutSchedules: baselineCpuPercent,
      windowSeconds: round(idleSeconds, 1),
      rssMiB: { before: round(rssBefore / 1048576, 1), allActive: round(rssAll / 1048576, 1) },
      bytesPerSchedule: round((rssAll - rssBefore) / SCHEDULES, 0),
    },
    fire: {
      fired,
      runs: runs.length,
      latenessMs: { p50: pct(lateness, 50), p99: pct(lateness, 99), max: Math.max(...lateness) },
      firesPerSecond: round(SCHEDULES / (Math.max(...lateness) / 1000), 0),
      serverCpuMsPerFire: round((fireCpu * 1000) / SCHEDULES, 3),
      statementsPerFire: round(queries / SCHEDULES, 2),
    },
  };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "taskgate-bench-"));
  api.dir = dir;
  let db;
  const extra = [...UNLIMITED];
  if (BACKEND === "postgres") {
    db = freshPostgres();
    extra.push("--database-url", db.url);
  }
  const server = await startServer(api, bin, dir, extra);
  try {
    const result = { backend: BACKEND, ...(await bench(server.pid)) };
    console.log(JSON.stringify(result, null, 1));
  } finally {
    server.kill("SIGKILL");
    api.agent.destroy();
    rmSync(dir, { recursive: true, force: true });
    if (db) {
      await sleep(300);
      db.drop();
    }
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
