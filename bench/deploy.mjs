// Deploys and deployed runs, against the development path in the same run. Only loopback;
// every phase is bounded in time or count.
//
//   node bench/deploy.mjs [--backend sqlite|postgres] [--samples 30] [--runs 100]
//
// 1. `trigger.dev deploy` of tests/compat/dev with only a prod key: the CLI's wall time, and
//    how much of it is taskgate's answer to `POST /api/v1/deployments` (unpacking the bundle,
//    installing its externals, running its index controller), from
//    taskgate_http_request_duration_seconds.
// 2. Latency, one run at a time (`compat-hello`, a no-op), on the deployment (a fresh `node`
//    process per run, started by taskgate's runner) and on `trigger.dev dev` (the CLI's own
//    pool of processes): trigger → the run's attempt started and trigger → `COMPLETED`, from
//    the server's own timestamps (createdAt, startedAt, finishedAt), and trigger → the client
//    sees it completed (polled every 10 ms).
// 3. Throughput: --runs no-op runs kept 10 and then 50 in flight (the runner's capacity and
//    the environment's concurrency limit are 50), runs per second from the first trigger to
//    the last completion, for the deployment and for the dev CLI.
// 4. Memory per running deployed run: 10 runs of `compat-slow` (a 55 s sleep) at once; the
//    resident and proportional memory of every process the server started, divided by 10.
//
// Needs target/release/taskgate (cargo build --release -p taskgate), `npm ci` in
// tests/compat/dev, and for postgres TASKGATE_TEST_DATABASE_URL (a fresh database is created
// and dropped with psql).
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Client, freshPostgres, opt, pct, scrapeMetrics, sleep, startServer, UNLIMITED } from "./lib.mjs";

const BACKEND = opt("backend", "sqlite");
const SAMPLES = Number(opt("samples", 30));
const RUNS = Number(opt("runs", 100));
const CAPACITY = 50;
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = process.env.TASKGATE_BIN ?? join(root, "target/release/taskgate");
const devDir = join(root, "tests/compat/dev");
const cliBin = join(devDir, "node_modules/trigger.dev/dist/esm/index.js");
const api = new Client({ maxSockets: 128 });
const request = (...args) => api.request(...args);
const round = (x, d = 1) => +x.toFixed(d);
const stats = (xs) => ({ p50: round(pct(xs, 50)), p99: round(pct(xs, 99)) });

async function ok(promise, what) {
  const r = await promise;
  if (r.status >= 300) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Runs the official CLI in the task project; resolves with its output once it exits. */
function cli(args, env, { until, timeoutMs = 300_000 } = {}) {
  const home = mkdtempSync(join(tmpdir(), "taskgate-bench-cli-"));
  const child = spawn(process.execPath, [cliBin, ...args, "--skip-update-check"], {
    cwd: devDir,
    env: { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: home, TRIGGER_API_URL: api.base, AI_AGENT: "taskgate-bench", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stdout.on("data", (c) => (output += c));
  child.stderr.on("data", (c) => (output += c));
  const stop = () => {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
    rmSync(home, { recursive: true, force: true });
  };
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`trigger.dev ${args[0]} did not finish:\n${output.slice(-3000)}`));
    }, timeoutMs);
    if (until) {
      const check = setInterval(() => {
        if (until.test(output)) {
          clearInterval(check);
          clearTimeout(timer);
          resolve({ output, stop });
        }
      }, 100);
      child.on("exit", () => clearInterval(check));
    }
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (until) return reject(new Error(`trigger.dev ${args[0]} exited ${code}:\n${output.slice(-3000)}`));
      rmSync(home, { recursive: true, force: true });
      if (code !== 0) reject(new Error(`trigger.dev ${args[0]} exited ${code}:\n${output.slice(-3000)}`));
      else resolve({ output });
    });
  });
  return done;
}

/** Triggers `task`; answers its run id. */
const trigger = async (key, task, payload) => (await ok(request("POST", `/api/v1/tasks/${task}/trigger`, key, { payload }), "trigger")).id;

/** Waits for `id` to finish; answers the run and when the client saw it finished. */
async function finished(key, id, everyMs = 10) {
  for (;;) {
    const run = await ok(request("GET", `/api/v3/runs/${id}`, key), "retrieve");
    if (run.isCompleted) {
      if (run.status !== "COMPLETED") throw new Error(`run ${id} ended ${run.status}`);
      return { run, seen: performance.now() };
    }
    await sleep(everyMs);
  }
}

const ms = (a, b) => new Date(b).getTime() - new Date(a).getTime();

/** Phase 2 on one environment. */
async function latency(key) {
  for (let i = 0; i < 3; i++) await finished(key, await trigger(key, "compat-hello", { name: "warm" }));
  const started = [];
  const completed = [];
  const seen = [];
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = performance.now();
    const id = await trigger(key, "compat-hello", { name: `n${i}` });
    const { run, seen: at } = await finished(key, id);
    started.push(ms(run.createdAt, run.startedAt));
    completed.push(ms(run.createdAt, run.finishedAt));
    seen.push(at - t0);
  }
  return { samples: SAMPLES, triggerToStartedMs: stats(started), triggerToCompletedMs: stats(completed), clientSeesCompletedMs: stats(seen) };
}

/** Phase 3 on one environment: `RUNS` runs, `inFlight` at a time. */
async function throughput(key, inFlight) {
  let next = 0;
  const runs = [];
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < RUNS) {
        next++;
        const id = await trigger(key, "compat-hello", { name: "t" });
        runs.push((await finished(key, id, 25)).run);
      }
    }),
  );
  const first = Math.min(...runs.map((r) => new Date(r.createdAt).getTime()));
  const last = Math.max(...runs.map((r) => new Date(r.finishedAt).getTime()));
  return { runs: RUNS, inFlight, runsPerSecond: round(RUNS / ((last - first) / 1000), 2) };
}

/**
 * Memory of `pid`'s descendants (not `pid` itself), in bytes: resident (`rss`, counting pages
 * the processes share, such as node's own binary, once per process) and proportional
 * (`pss`, shared pages divided among their sharers: what the runs add to the machine).
 */
function descendantsMemory(pid) {
  const parent = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {}
  }
  const under = (p) => {
    for (let q = parent.get(p); q; q = parent.get(q)) if (q === pid) return true;
    return false;
  };
  const total = { rss: 0, pss: 0 };
  for (const p of parent.keys()) {
    if (!under(p)) continue;
    try {
      const rollup = readFileSync(`/proc/${p}/smaps_rollup`, "utf8");
      total.rss += Number(/^Rss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) * 1024;
      total.pss += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) * 1024;
    } catch {}
  }
  return total;
}

/** Phase 4: memory per running deployed run. */
async function memory(key, serverPid) {
  const n = 10;
  const ids = [];
  for (let i = 0; i < n; i++) ids.push(await trigger(key, "compat-slow", {}));
  for (const id of ids) {
    for (;;) {
      const run = await ok(request("GET", `/api/v3/runs/${id}`, key), "retrieve");
      if (run.status === "EXECUTING") break;
      await sleep(100);
    }
  }
  await sleep(3000); // the task processes are up and idle in their sleep
  const mem = descendantsMemory(serverPid);
  for (const id of ids) await ok(request("POST", `/api/v2/runs/${id}/cancel`, key, {}), "cancel");
  return { runningRuns: n, residentMiBPerRun: round(mem.rss / n / 1048576), proportionalMiBPerRun: round(mem.pss / n / 1048576) };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "taskgate-bench-"));
  const pg = BACKEND === "postgres" ? freshPostgres() : undefined;
  const extra = [...UNLIMITED, "--runner-capacity", String(CAPACITY), "--concurrency-limit", String(CAPACITY), "--dev-max-concurrent-runs", String(CAPACITY)];
  if (pg) extra.push("--database-url", pg.url);
  const server = await startServer(api, bin, dir, extra);
  let dev;
  try {
    const admin = readFileSync(join(dir, "admin-token"), "utf8").trim();
    const org = await ok(request("POST", "/api/v1/orgs", admin, { title: "Bench" }), "org");
    const project = await ok(request("POST", `/api/v1/orgs/${org.slug}/projects`, admin, { name: "Deploy" }), "project");
    const ref = project.externalRef;
    const prodKey = (await ok(request("GET", `/api/v1/projects/${ref}/prod`, admin), "prod key")).apiKey;
    const devKey = (await ok(request("GET", `/api/v1/projects/${ref}/dev`, admin), "dev key")).apiKey;
    const result = { backend: BACKEND };

    const before = await scrapeMetrics(api);
    const t0 = performance.now();
    await cli(["deploy"], { TRIGGER_ACCESS_TOKEN: prodKey, TASKGATE_COMPAT_PROJECT_REF: ref });
    const wall = (performance.now() - t0) / 1000;
    const after = await scrapeMetrics(api);
    const serverSeconds = (m) =>
      [...m].filter(([k]) => k.startsWith("taskgate_http_request_duration_seconds_sum{") && k.includes('route="/api/v1/deployments"') && k.includes('method="POST"')).reduce((s, [, v]) => s + v, 0);
    const indexing = serverSeconds(after) - serverSeconds(before);
    result.deploy = { cliWallSeconds: round(wall), taskgateIndexingSeconds: round(indexing), indexingShare: round(indexing / wall, 2) };

    dev = await cli(["dev", "--skip-platform-notifications", "--skip-mcp-install", "--skip-rules-install"], { TRIGGER_ACCESS_TOKEN: admin, TASKGATE_COMPAT_PROJECT_REF: ref }, { until: /Local worker ready/, timeoutMs: 180_000 });

    result.latency = { deployed: await latency(prodKey), dev: await latency(devKey) };
    result.throughput = {
      deployed: [await throughput(prodKey, 10), await throughput(prodKey, CAPACITY)],
      dev: [await throughput(devKey, 10), await throughput(devKey, CAPACITY)],
    };
    result.memory = await memory(prodKey, server.pid);
    console.log(JSON.stringify(result, null, 1));
  } finally {
    dev?.stop();
    server.kill("SIGKILL");
    api.agent.destroy();
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.runner`, { recursive: true, force: true });
    if (pg) {
      await sleep(300);
      pg.drop();
    }
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
