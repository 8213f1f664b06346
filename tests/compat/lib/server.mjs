// Starting and stopping a taskgate server for one backend run, and the
// throwaway PostgreSQL database that the postgres run uses.

import { spawn, execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, constants, mkdtemp, readFile, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const compatDir = path.resolve(here, "..");
export const repoRoot = path.resolve(compatDir, "../..");

const HEALTH_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const LOG_LIMIT = 2_000_000; // keep the tail of very chatty servers only

/** Thrown for problems that stop a backend run before any case runs. */
export class SetupError extends Error {}

async function isExecutable(file) {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The server binary: TASKGATE_BIN if set (never built), else
 * target/release/taskgate, built with cargo when missing unless
 * TASKGATE_NO_BUILD is set.
 */
export async function findBinary(env = process.env) {
  if (env.TASKGATE_BIN) {
    const bin = path.resolve(env.TASKGATE_BIN);
    if (!(await isExecutable(bin))) {
      throw new SetupError(`TASKGATE_BIN=${env.TASKGATE_BIN} does not exist or is not executable`);
    }
    return bin;
  }
  const bin = path.join(repoRoot, "target/release/taskgate");
  if (await isExecutable(bin)) return bin;
  if (env.TASKGATE_NO_BUILD) {
    throw new SetupError(
      `${bin} not found and TASKGATE_NO_BUILD is set; run \`cargo build --release -p taskgate\` or set TASKGATE_BIN`,
    );
  }
  console.log(`# ${bin} not found; running cargo build --release -p taskgate in ${repoRoot}`);
  const code = await new Promise((resolve) => {
    const child = spawn("cargo", ["build", "--release", "-p", "taskgate"], { cwd: repoRoot, stdio: "inherit" });
    child.on("error", (err) => {
      console.log(`# could not run cargo: ${err.message}`);
      resolve(-1);
    });
    child.on("exit", (c) => resolve(c ?? -1));
  });
  if (code !== 0 || !(await isExecutable(bin))) {
    throw new SetupError(`cargo build --release -p taskgate failed (exit ${code}); no server binary at ${bin}`);
  }
  return bin;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Environment for the server: ours, minus anything that could redirect it. */
function serverEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("TASKGATE_") || k === "DATABASE_URL") continue;
    env[k] = v;
  }
  env.TASKGATE_LOG_FORMAT = "json";
  env.RUST_LOG = process.env.RUST_LOG ?? "warn";
  return env;
}

/**
 * Start `taskgate serve` and wait for /healthz. Resolves to a handle with
 * `url`, `adminToken`, `logs()`, `stop()` and `restart()`; on failure the SetupError
 * carries the server output in `.logs`. `dataDir` reuses a data directory (another node of
 * the same installation shares its keys); `label` marks its lines in the logs.
 */
export async function startServer({ bin, databaseUrl, dataDir: shared, label = "" }) {
  const dataDir = shared ?? (await mkdtemp(path.join(os.tmpdir(), "taskgate-compat-")));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Alert webhooks go to receivers on loopback here.
  const args = ["serve", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`, "--webhook-allow-private", "true"];
  if (databaseUrl) args.push("--database-url", databaseUrl);

  let output = "";
  const append = (chunk) => {
    output += label ? chunk.toString().replace(/^/gm, label) : chunk.toString();
    if (output.length > LOG_LIMIT) output = output.slice(-LOG_LIMIT);
  };
  let child = null;
  let exit = null; // { code, signal } once the process has ended
  let exited = null;
  const launch = () => {
    exit = null;
    child = spawn(bin, args, { env: serverEnv(), stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", append);
    child.stderr.on("data", append);
    exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        exit = { code, signal };
        resolve(exit);
      });
      child.on("error", (err) => {
        append(`[compat] could not start ${bin}: ${err.message}\n`);
        exit = { code: null, signal: null, error: err };
        resolve(exit);
      });
    });
  };

  const kill = async (signal) => {
    if (exit) return;
    child.kill(signal);
    const timer = setTimeout(() => exit || child.kill("SIGKILL"), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  };

  const healthy = async () => {
    const deadline = Date.now() + HEALTH_TIMEOUT_MS;
    for (;;) {
      if (exit) return `server ${describeExit(exit)} before ${url}/healthz answered 200`;
      try {
        const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
        if (res.status === 200) return null;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) return `${url}/healthz did not answer 200 within ${HEALTH_TIMEOUT_MS / 1000}s`;
      await sleep(200);
    }
  };

  const handle = {
    url,
    dataDir,
    adminToken: null,
    logs: () => output,
    /** Why the server is gone, or null while it runs. */
    exitReason: () => (exit ? describeExit(exit) : null),
    async stop({ keepDataDir = false } = {}) {
      await kill("SIGTERM");
      if (!keepDataDir && !shared) await rm(dataDir, { recursive: true, force: true });
    },
    /**
     * Stops the server with `signal` (SIGKILL: nothing gets to finish) and starts it again on
     * the same port, data directory and database; resolves once it answers /healthz.
     */
    async restart({ signal = "SIGKILL" } = {}) {
      await kill(signal);
      append(`[compat] restarting after ${signal}\n`);
      launch();
      const problem = await healthy();
      if (problem) throw new Error(`restart failed: ${problem}`);
    },
  };

  const fail = async (message) => {
    await handle.stop({ keepDataDir: true });
    const err = new SetupError(message);
    err.logs = output;
    err.dataDir = dataDir;
    throw err;
  };

  launch();
  const problem = await healthy();
  if (problem) return fail(problem);

  const tokenFile = path.join(dataDir, "admin-token");
  try {
    handle.adminToken = (await readFile(tokenFile, "utf8")).trim();
  } catch (err) {
    return fail(`cannot read the admin token from ${tokenFile}: ${err.message}`);
  }
  if (!handle.adminToken) return fail(`${tokenFile} is empty`);
  return handle;
}

function describeExit({ code, signal, error }) {
  if (error) return `could not be started (${error.message})`;
  if (signal) return `was killed by ${signal}`;
  return `exited with code ${code}`;
}

// --- PostgreSQL -------------------------------------------------------------

function psql(url, sql) {
  return new Promise((resolve, reject) => {
    execFile("psql", [url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], { timeout: 30_000 }, (err, _out, stderr) => {
      if (err) reject(new SetupError(`psql failed on \`${sql}\`: ${(stderr || err.message).trim()}`));
      else resolve();
    });
  });
}

/** Create `taskgate_compat_<hex>` next to the database in `adminUrl`. */
export async function createDatabase(adminUrl) {
  const name = `taskgate_compat_${randomBytes(6).toString("hex")}`;
  await psql(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString() };
}

export async function dropDatabase(adminUrl, name) {
  await psql(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

/** A database URL with its password hidden, for printing. */
export function redactUrl(value) {
  try {
    const url = new URL(value);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    return "<unparseable url>";
  }
}
