// A `trigger.dev dev` session against the server under test: the official CLI 4.8.3 runs the
// task project in ../dev as the worker. The shared session is one per backend run, started on
// first use and stopped by the runner's cleanup; startDev starts one of a case's own.

import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { compatDir } from "./server.mjs";
import { getEnv, newProject } from "./api.mjs";

export const devDir = path.join(compatDir, "dev");
const READY_TIMEOUT_MS = 120_000;
const OUTPUT_LIMIT = 2_000_000;

/**
 * The backend's dev session: `{ pat, ref, devKey, early, output(), stop(signal) }`.
 * `beforeStart(session)` runs after the project exists and before the CLI starts (to trigger
 * a run that must wait for it).
 */
export function devSession(ctx, { beforeStart } = {}) {
  ctx.dev ??= startDev(ctx, { beforeStart });
  return ctx.dev;
}

/**
 * A `trigger.dev dev` of its own for a new project, with `args` added to the command line
 * and `extraEnv` to its environment; stopped by the runner's cleanup if the caller does not
 * stop it first.
 */
export async function startDev(ctx, { beforeStart, args = [], extraEnv = {} } = {}) {
  const { pat, ref } = await newProject(ctx);
  const dev = await getEnv(ctx, pat, ref, "dev");
  const session = { pat, ref, devKey: dev.apiKey };
  if (beforeStart) await beforeStart(session);

  // A config home of its own: the CLI writes nothing into the developer's.
  const home = await mkdtemp(path.join(os.tmpdir(), "taskgate-compat-dev-"));
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: home,
    TRIGGER_ACCESS_TOKEN: pat,
    TRIGGER_API_URL: ctx.url,
    TASKGATE_COMPAT_PROJECT_REF: ref,
    // Not a terminal and an agent: the CLI skips its interactive prompts.
    AI_AGENT: "taskgate-compat",
    NODE_ENV: "development",
    ...extraEnv,
  };
  const cli = path.join(devDir, "node_modules", "trigger.dev", "dist", "esm", "index.js");
  const child = spawn(process.execPath, [cli, "dev", "--skip-platform-notifications", "--skip-update-check", "--skip-mcp-install", "--skip-rules-install", ...args], {
    cwd: devDir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group, so stopping it stops its workers too
  });
  let output = "";
  const append = (chunk) => {
    output += chunk.toString();
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
  };
  child.stdout.on("data", append);
  child.stderr.on("data", append);
  let exited = null;
  const exit = new Promise((resolve) => {
    child.on("exit", (code, signal) => resolve((exited = { code, signal })));
    child.on("error", (err) => resolve((exited = { error: err.message })));
  });

  session.output = () => output;
  /** False once the CLI has exited (stopped, or stopped by another `trigger.dev dev`). */
  session.alive = () => !exited;
  session.pid = child.pid;
  session.stop = async (signal = "SIGTERM") => {
    if (!exited) {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }, 5_000);
      await exit;
      clearTimeout(timer);
    }
    await rm(home, { recursive: true, force: true });
  };
  ctx.cleanups.push(() => session.stop());

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!/Local worker ready/.test(output)) {
    if (exited) throw new Error(`trigger.dev dev exited (${JSON.stringify(exited)}) before its worker was ready:\n${output.slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`trigger.dev dev did not report a ready worker within ${READY_TIMEOUT_MS / 1000}s:\n${output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return session;
}

/**
 * A dev session that several cases share under `name`, started on first use, and started
 * again when it is no longer running: `trigger.dev dev` stops the dev process already running
 * for the same project directory, so a case that starts one of its own (the MCP server's
 * `start_dev_server`, for one) ends the shared one.
 */
export async function sharedDev(ctx, name) {
  ctx.sharedDevs ??= {};
  const current = ctx.sharedDevs[name] ? await ctx.sharedDevs[name].catch(() => null) : null;
  if (current?.alive()) return current;
  if (current) console.log(`# the shared dev session "${name}" had stopped; starting another`);
  ctx.sharedDevs[name] = startDev(ctx);
  return ctx.sharedDevs[name];
}
