// What every benchmark script shares: its options, a free port, an HTTP client for a
// taskgate on loopback, and percentiles.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import { createServer } from "node:net";

/** The value after `--name` on the command line, else `fallback`. */
export const opt = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A TCP port that was free a moment ago, on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The `p`th percentile (0–100) of `xs`, nearest rank. */
export const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/**
 * Keep-alive requests to one server (`client.base`, set once it listens). Each answers
 * `{ status, headers, body, at }`: the body parsed as JSON when it is JSON, `at` the
 * `performance.now()` of its end. Requests time out after two minutes.
 */
export class Client {
  constructor({ maxSockets = Infinity } = {}) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
    this.base = undefined;
  }

  request(method, path, token, body, contentType = "application/json") {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        `${this.base}${path}`,
        {
          method,
          agent: this.agent,
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(data ? { "content-type": contentType, "content-length": Buffer.byteLength(data) } : {}),
          },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c) => (text += c));
          res.on("end", () => {
            let json = null;
            try {
              json = text ? JSON.parse(text) : null;
            } catch {
              json = text;
            }
            resolve({ status: res.statusCode, headers: res.headers, body: json, at: performance.now() });
          });
        },
      );
      req.setTimeout(120_000, () => req.destroy(new Error(`timeout ${method} ${path}`)));
      req.on("error", reject);
      req.end(data);
    });
  }
}

/**
 * Starts `bin serve` on a free loopback port with `dir` as its data directory and `extra`
 * options, points `client` at it, and resolves once `/healthz` answers (20 s at most).
 */
export async function startServer(client, bin, dir, extra = []) {
  const { spawn } = await import("node:child_process");
  const port = await freePort();
  client.base = `http://127.0.0.1:${port}`;
  const server = spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dir, ...extra], {
    env: { ...process.env, RUST_LOG: "warn", TASKGATE_LOG_FORMAT: "json" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  for (let i = 0; ; i++) {
    try {
      if ((await client.request("GET", "/healthz", "")).status === 200) return server;
    } catch {}
    if (i > 200) throw new Error("server did not start");
    await sleep(100);
  }
}

/** Stops a server from `startServer` and waits for it to exit. */
export async function stopServer(server) {
  const exited = new Promise((r) => server.once("exit", r));
  server.kill("SIGTERM");
  await exited;
}

/** A server's `/metrics` as `Map{"name{labels}" → value}`. */
export async function scrapeMetrics(client) {
  const text = (await client.request("GET", "/metrics")).body;
  const out = new Map();
  for (const line of String(text).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/**
 * Quantile `q` of histogram `name` between two scrapes, interpolated within its buckets;
 * `labels` (e.g. `route="/x"`) picks one series.
 */
export function histogramQuantile(before, after, name, q, labels = "") {
  const buckets = [];
  for (const [k, v] of after) {
    const m = new RegExp(`^${name}_bucket\\{(.*)le="([^"]+)"\\}$`).exec(k);
    if (!m || (labels && !m[1].includes(labels))) continue;
    buckets.push({ le: m[2] === "+Inf" ? Infinity : Number(m[2]), n: v - (before.get(k) ?? 0) });
  }
  buckets.sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.n ?? 0;
  if (!total) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevN = 0;
  for (const b of buckets) {
    if (b.n >= rank) {
      if (b.le === Infinity) return prevLe;
      return prevLe + ((b.le - prevLe) * (rank - prevN)) / Math.max(1, b.n - prevN);
    }
    prevLe = b.le;
    prevN = b.n;
  }
  return NaN;
}

/** The sum of every series whose key starts with `prefix`, but those `exclude` names. */
export function sumOf(metrics, prefix, exclude = () => false) {
  let sum = 0;
  for (const [k, v] of metrics) if (k.startsWith(prefix) && !exclude(k)) sum += v;
  return sum;
}

/** CPU seconds (user + system) process `pid` has used. */
export function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks
}

/** Resident memory of process `pid`, in bytes. */
export function rssBytes(pid) {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  return Number(line.split(/\s+/)[1]) * 1024;
}

/** Options that make the rate limiter's buckets too large to refuse anything: its cost stays,
 * its 429s do not. */
export const UNLIMITED = ["--api-rate-limit-refill-rate", "1000000", "--api-rate-limit-interval", "1s", "--api-rate-limit-max", "1000000"];

/**
 * A fresh PostgreSQL database beside `TASKGATE_TEST_DATABASE_URL`'s (made with psql):
 * `{ url, drop }`, `drop()` removing it.
 */
export function freshPostgres(prefix = "taskgate_bench") {
  const base = process.env.TASKGATE_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  const name = `${prefix}_${process.pid}`;
  execFileSync("psql", [base, "-qc", `CREATE DATABASE ${name}`]);
  return {
    url: base.replace(/\/[^/]*$/, `/${name}`),
    drop: () => execFileSync("psql", [base, "-qc", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]),
  };
}
