// Run benchmarks: triggers per second, change-to-visible latency in the realtime run feed
// (p50/p99) while N other subscribers hold open long-polls, and the server's resident memory
// with those subscriptions open. Only loopback; every phase is bounded in time or count.
//
//   node bench/runs.mjs [--backend sqlite|postgres] [--subscribers 1000] [--seconds 5]
//
// Needs target/release/taskgate (cargo build --release -p taskgate) and, for postgres,
// TASKGATE_TEST_DATABASE_URL (a fresh database is created and dropped with psql).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Client, freePort, opt, pct } from "./lib.mjs";

const BACKEND = opt("backend", "sqlite");
const SUBSCRIBERS = Number(opt("subscribers", 1000));
const SECONDS = Number(opt("seconds", 5));
const CONCURRENCY = 16; // trigger workers
const SAMPLES = 200; // change-to-visible measurements
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = process.env.TASKGATE_BIN ?? join(root, "target/release/taskgate");
const api = new Client({ maxSockets: Infinity });
const request = (...args) => api.request(...args);



const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) / 1024;

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "taskgate-bench-"));
  let db;
  const extra = [];
  if (BACKEND === "postgres") {
    const url = process.env.TASKGATE_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
    db = `taskgate_bench_${process.pid}`;
    execFileSync("psql", [url, "-qc", `CREATE DATABASE ${db}`]);
    extra.push("--database-url", url.replace(/\/[^/]*$/, `/${db}`));
  }
  const port = await freePort();
  api.base = `http://127.0.0.1:${port}`;
  const server = spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dir, "--realtime-poll-seconds", "60", ...extra], {
    env: { ...process.env, RUST_LOG: "warn", TASKGATE_LOG_FORMAT: "json" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await request("GET", "/healthz", "")).status === 200) break;
      } catch {}
      if (i > 100) throw new Error("server did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
    const admin = readFileSync(join(dir, "admin-token"), "utf8").trim();
    const org = (await request("POST", "/api/v1/orgs", admin, { title: "Bench" })).body;
    const project = (await request("POST", `/api/v1/orgs/${org.slug}/projects`, admin, { name: "Bench" })).body;
    const key = (await request("GET", `/api/v1/projects/${project.externalRef}/prod`, admin)).body.apiKey;
    const idle = rss(server.pid);

    // 1. Triggers per second: CONCURRENCY workers for SECONDS.
    const latencies = [];
    const ids = [];
    const until = Date.now() + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (Date.now() < until) {
          const t = performance.now();
          const r = await request("POST", "/api/v1/tasks/bench/trigger", key, { payload: '{"n":1}', options: { tags: ["bench"] } });
          if (r.status !== 200) throw new Error(`trigger: ${r.status} ${JSON.stringify(r.body)}`);
          latencies.push(performance.now() - t);
          ids.push(r.body.id);
        }
      }),
    );
    const triggersPerSecond = latencies.length / SECONDS;

    // 2. SUBSCRIBERS idle long-polls on their own runs, held open for the rest of the run.
    while (ids.length < SUBSCRIBERS + SAMPLES) {
      ids.push((await request("POST", "/api/v1/tasks/bench/trigger", key, {})).body.id);
    }
    const live = async (id) => {
      const snap = await request("GET", `/realtime/v1/runs/${id}?log=full&offset=-1`, key);
      const h = snap.headers;
      return () =>
        request("GET", `/realtime/v1/runs/${id}?cursor=&handle=${h["electric-handle"]}&live=true&log=full&offset=${h["electric-offset"]}`, key);
    };
    const beforeSubscribers = rss(server.pid);
    const idlePolls = [];
    for (const id of ids.slice(0, SUBSCRIBERS)) {
      idlePolls.push((await live(id))().catch(() => null));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const withSubscribers = rss(server.pid);

    // 3. Change-to-visible: a live poll waits, the run is canceled, the poll answers.
    const visible = [];
    for (const id of ids.slice(SUBSCRIBERS, SUBSCRIBERS + SAMPLES)) {
      const poll = (await live(id))();
      await new Promise((r) => setTimeout(r, 5));
      const t = performance.now();
      await request("POST", `/api/v2/runs/${id}/cancel`, key);
      const r = await poll;
      visible.push(performance.now() - t);
      if (r.body[0]?.value?.status !== "CANCELED") throw new Error(`feed did not show the change: ${JSON.stringify(r.body)}`);
    }
    const result = {
      backend: BACKEND,
      triggersPerSecond: Math.round(triggersPerSecond),
      triggerMs: { p50: +pct(latencies, 50).toFixed(2), p99: +pct(latencies, 99).toFixed(2) },
      subscribers: SUBSCRIBERS,
      changeToVisibleMs: { p50: +pct(visible, 50).toFixed(2), p99: +pct(visible, 99).toFixed(2) },
      rssMiB: {
        idle: +idle.toFixed(1),
        afterTriggers: +beforeSubscribers.toFixed(1),
        [`with${SUBSCRIBERS}Subscriptions`]: +withSubscribers.toFixed(1),
      },
    };
    console.log(JSON.stringify(result));
    server.kill("SIGKILL");
    await Promise.allSettled(idlePolls);
  } finally {
    server.kill("SIGKILL");
    api.agent.destroy();
    rmSync(dir, { recursive: true, force: true });
    if (db) {
      await new Promise((r) => setTimeout(r, 200));
      const url = process.env.TASKGATE_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
      execFileSync("psql", [url, "-qc", `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
