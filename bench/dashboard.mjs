// Dashboard benchmark: with R runs and G error groups in one environment, how long each page
// takes to answer (server-side rendering, measured from the client on loopback), p50 and p95.
// Runs are triggered over the API; error occurrences are seeded through the store
// (target/release/examples/seed_errors). Only loopback; every phase is bounded.
//
//   node bench/dashboard.mjs [--backend sqlite|postgres] [--runs 100000] [--groups 10000]
//                            [--occurrences 100000] [--samples 100] [--keep true]
//
// `--keep true` leaves the seeded data directory (and PostgreSQL database) in place and prints
// where it is, to look at a page's queries afterwards; remove them by hand.
//
// Needs target/release/taskgate and the seeder (cargo build --release -p taskgate, then
// cargo build --release -p taskgate-server --example seed_errors), and for postgres
// TASKGATE_TEST_DATABASE_URL (a fresh database is created and dropped with psql).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Client, opt, pct, startServer, stopServer } from "./lib.mjs";

const BACKEND = opt("backend", "sqlite");
const RUNS = Number(opt("runs", 100_000));
const GROUPS = Number(opt("groups", 10_000));
const OCCURRENCES = Number(opt("occurrences", 100_000));
const SAMPLES = Number(opt("samples", 100));
const KEEP = opt("keep", "false") === "true";
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = process.env.TASKGATE_BIN ?? join(root, "target/release/taskgate");
const seeder = join(root, "target/release/examples/seed_errors");
const api = new Client({ maxSockets: 16 });
const request = (...args) => api.request(...args);
const PG = process.env.TASKGATE_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** Triggers `n` runs of five tasks, `concurrency` at a time. */
async function triggerRuns(key, n, concurrency = 16) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const r = await request("POST", `/api/v1/tasks/task-${i % 5}/trigger`, key, {
        payload: { i },
        options: { tags: [`tag-${i % 50}`] },
      });
      if (r.status !== 200) throw new Error(`trigger: ${r.status} ${JSON.stringify(r.body)}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** A signed-in session's cookie, from a link `taskgate login-link` prints. */
function signIn(dir, extra, email) {
  const link = execFileSync(bin, ["login-link", "--email", email, "--data-dir", dir, "--listen", api.base.replace("http://", ""), ...extra])
    .toString()
    .trim();
  return fetch(link, { redirect: "manual" }).then((r) => {
    const cookie = r.headers.getSetCookie().find((c) => c.startsWith("tg_session="));
    if (!cookie) throw new Error(`sign-in failed: ${r.status}`);
    return cookie.split(";")[0];
  });
}

async function timePage(cookie, path) {
  const get = async () => {
    const r = await fetch(`${api.base}${path}`, { headers: { cookie }, redirect: "manual" });
    const text = await r.text();
    if (r.status !== 200) throw new Error(`${path}: ${r.status} ${text.slice(0, 300)}`);
    return text.length;
  };
  for (let i = 0; i < 5; i++) await get(); // warm caches
  const ms = [];
  let bytes = 0;
  for (let i = 0; i < SAMPLES; i++) {
    const t = process.hrtime.bigint();
    bytes = await get();
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const round = (x) => Math.round(x * 100) / 100;
  return { path, bytes, p50Ms: round(pct(ms, 50)), p95Ms: round(pct(ms, 95)), samples: SAMPLES };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "taskgate-bench-dashboard-"));
  let db;
  const extra = [];
  let databaseUrl = `sqlite://${join(dir, "taskgate.db")}`;
  if (BACKEND === "postgres") {
    db = `taskgate_bench_dashboard_${process.pid}`;
    execFileSync("psql", [PG, "-qc", `CREATE DATABASE ${db}`]);
    databaseUrl = PG.replace(/\/[^/]*$/, `/${db}`);
    extra.push("--database-url", databaseUrl);
  }
  let server;
  try {
    // Seeding triggers 100,000 runs as fast as it can: the API's rate limit would hold it
    // back (the dashboard's pages, measured later, are not under that limit).
    server = await startServer(api, bin, dir, [...extra, "--api-rate-limit", "false"]);
    const admin = readFileSync(join(dir, "admin-token"), "utf8").trim();
    const org = (await request("POST", "/api/v1/orgs", admin, { title: "Bench" })).body;
    const project = (await request("POST", `/api/v1/orgs/${org.slug}/projects`, admin, { name: "Bench" })).body;
    const key = (await request("GET", `/api/v1/projects/${project.externalRef}/prod`, admin)).body.apiKey;
    const env = (await request("POST", "/api/v1/auth/jwt/claims", key)).body.sub;
    const started = Date.now();
    await triggerRuns(key, RUNS);
    const runSeconds = (Date.now() - started) / 1000;
    await stopServer(server);

    const seedStarted = Date.now();
    execFileSync(
      seeder,
      ["--database-url", databaseUrl, "--env", env, "--runs", String(OCCURRENCES), "--groups", String(GROUPS),
        "--concurrency", BACKEND === "postgres" ? "8" : "1"],
      { stdio: ["ignore", "ignore", "inherit"], maxBuffer: 1 << 20 },
    );
    const seedSeconds = (Date.now() - seedStarted) / 1000;
    if (BACKEND === "postgres") execFileSync("psql", [databaseUrl, "-qc", "VACUUM ANALYZE"]);

    server = await startServer(api, bin, dir, extra);
    const cookie = await signIn(dir, extra, "admin@taskgate.local");
    const base = `/orgs/${org.slug}/projects/${project.externalRef}/env/prod`;
    const runs = (await request("GET", "/api/v1/runs?page[size]=1", key)).body.data;
    const errors = (await request("GET", "/api/v1/errors?filter[period]=30d&page[size]=1", key)).body.data;
    const pages = [
      "/",
      `${base}/runs`,
      `${base}/runs?status=QUEUED&task=task-3&tag=tag-8`,
      // No run has this tag: the worst case, every run of the period is looked at.
      `${base}/runs?tag=no-such-tag`,
      `${base}/runs/${runs[0].id}`,
      `${base}/errors`,
      `${base}/errors?period=7d&search=stage%20c`,
      `${base}/errors/${errors[0].id}`,
      `${base}/apikeys`,
      "/account/tokens",
    ];
    const results = [];
    for (const p of pages) results.push(await timePage(cookie, p));
    console.log(JSON.stringify({ backend: BACKEND, runs: RUNS, groups: GROUPS, occurrences: OCCURRENCES, runSeconds, seedSeconds, pages: results }, null, 1));
    await stopServer(server);
    server = undefined;
  } finally {
    if (server) server.kill("SIGKILL");
    api.agent.destroy();
    if (KEEP) {
      console.error(`kept: --data-dir ${dir}${db ? ` --database-url ${databaseUrl}` : ""}`);
    } else {
      rmSync(dir, { recursive: true, force: true });
    }
    if (db && !KEEP) {
      await new Promise((r) => setTimeout(r, 200));
      execFileSync("psql", [PG, "-qc", `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
