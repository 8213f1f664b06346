// Errors API benchmark: with N failed runs across G error groups seeded through the store
// (target/release/examples/seed_errors), the latency of GET /api/v1/errors for the default
// query, a search, a status filter and a 7-day period; and what recording one failed run
// costs (statements and time inside the store). Only loopback; every phase is bounded.
//
//   node bench/errors.mjs [--backend sqlite|postgres] [--runs 1000000] [--groups 10000] [--samples 200]
//
// Needs target/release/taskgate and the seeder (cargo build --release -p taskgate
// -p taskgate-server --example seed_errors), and for postgres TASKGATE_TEST_DATABASE_URL
// (a fresh database is created and dropped with psql).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Client, opt, pct, startServer, stopServer } from "./lib.mjs";

const BACKEND = opt("backend", "sqlite");
const RUNS = Number(opt("runs", 1_000_000));
const GROUPS = Number(opt("groups", 10_000));
const SAMPLES = Number(opt("samples", 200));
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = process.env.TASKGATE_BIN ?? join(root, "target/release/taskgate");
const seeder = join(root, "target/release/examples/seed_errors");
const api = new Client({ maxSockets: 4 });
const request = (...args) => api.request(...args);
const PG = process.env.TASKGATE_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";



async function timeQuery(key, path) {
  for (let i = 0; i < 5; i++) await request("GET", path, key); // warm caches
  const ms = [];
  let rows = 0;
  for (let i = 0; i < SAMPLES; i++) {
    const t = process.hrtime.bigint();
    const r = await request("GET", path, key);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (r.status !== 200) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.body)}`);
    rows = r.body.data.length;
  }
  const round = (x) => Math.round(x * 100) / 100;
  return { path, rows, p50Ms: round(pct(ms, 50)), p95Ms: round(pct(ms, 95)), samples: SAMPLES };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "taskgate-bench-errors-"));
  let db;
  const extra = [];
  let databaseUrl = `sqlite://${join(dir, "taskgate.db")}`;
  if (BACKEND === "postgres") {
    db = `taskgate_bench_errors_${process.pid}`;
    execFileSync("psql", [PG, "-qc", `CREATE DATABASE ${db}`]);
    databaseUrl = PG.replace(/\/[^/]*$/, `/${db}`);
    extra.push("--database-url", databaseUrl);
  }
  let server;
  try {
    server = await startServer(api, bin, dir, extra);
    const admin = readFileSync(join(dir, "admin-token"), "utf8").trim();
    const org = (await request("POST", "/api/v1/orgs", admin, { title: "Bench" })).body;
    const project = (await request("POST", `/api/v1/orgs/${org.slug}/projects`, admin, { name: "Bench" })).body;
    const key = (await request("GET", `/api/v1/projects/${project.externalRef}/prod`, admin)).body.apiKey;
    const env = (await request("POST", "/api/v1/auth/jwt/claims", key)).body.sub;
    await stopServer(server);

    const seedStarted = Date.now();
    const seeded = JSON.parse(
      execFileSync(
        seeder,
        ["--database-url", databaseUrl, "--env", env, "--runs", String(RUNS), "--groups", String(GROUPS),
          "--concurrency", BACKEND === "postgres" ? "8" : "1"],
        { stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20 },
      ).toString(),
    );
    const seedSeconds = (Date.now() - seedStarted) / 1000;
    if (BACKEND === "postgres") {
      // A live database's autovacuum keeps statistics and the visibility map current; right
      // after a bulk load neither exists yet, and the planner would guess one row per scan.
      execFileSync("psql", [databaseUrl, "-qc", "VACUUM ANALYZE"]);
    }

    server = await startServer(api, bin, dir, extra);
    // A tenth of the groups resolved, so the status filter has something to sort out.
    const page = await request("GET", "/api/v1/errors?filter[period]=30d&page[size]=100", key);
    for (const g of page.body.data.slice(0, 10)) {
      await request("POST", `/api/v1/errors/${g.id}/resolve`, key, {});
    }
    const queries = [
      "/api/v1/errors",
      "/api/v1/errors?filter[search]=stage%20c",
      "/api/v1/errors?filter[status]=unresolved,ignored",
      "/api/v1/errors?filter[period]=7d",
    ];
    const results = [];
    for (const q of queries) results.push(await timeQuery(key, q));
    console.log(JSON.stringify({ backend: BACKEND, runs: RUNS, groups: GROUPS, seedSeconds, ingestion: seeded, list: results }, null, 1));
    await stopServer(server);
    server = undefined;
  } finally {
    if (server) server.kill("SIGKILL");
    api.agent.destroy();
    rmSync(dir, { recursive: true, force: true });
    if (db) {
      await new Promise((r) => setTimeout(r, 200));
      execFileSync("psql", [PG, "-qc", `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
