// The official trigger.dev CLI (4.8.3, from this suite's lockfile), run as a user would: with
// a config profile for this server in a scratch home, so no real login state is touched.

import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { assert } from "./check.mjs";

const require = createRequire(import.meta.url);
const cliPackage = require.resolve("trigger.dev/package.json");
const cliBin = path.join(path.dirname(cliPackage), require(cliPackage).bin.trigger);
export const CLI_TIMEOUT_MS = 60_000;
export const UAT_RE = /^tr_uat_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/;

/** The suite's task project (a trigger.config.ts), for commands that read one. */
export const TASK_PROJECT = fileURLToPath(new URL("../dev", import.meta.url));

/** The path of the installed CLI's entry point. */
export const CLI_BIN = cliBin;

/**
 * A scratch HOME (and XDG_CONFIG_HOME under it) whose config has one profile, `default`,
 * holding `pat` for this server. The caller removes it.
 */
export async function profileHome(ctx, pat) {
  const home = await mkdtemp(path.join(os.tmpdir(), "taskgate-compat-cli-"));
  await mkdir(path.join(home, "xdg/trigger"), { recursive: true });
  const config = {
    version: 2,
    currentProfile: "default",
    profiles: { default: { accessToken: pat, apiUrl: ctx.url } },
  };
  await writeFile(path.join(home, "xdg/trigger/config.json"), JSON.stringify(config), { mode: 0o600 });
  return home;
}

/** The environment the CLI runs with in `home`, as in CI. */
export const cliEnv = (home) => ({ PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: path.join(home, "xdg"), CI: "1", NO_COLOR: "1" });

/**
 * Run the installed CLI with a config profile holding `pat` for this server,
 * in a scratch HOME/XDG_CONFIG_HOME so no real login state is read or written. It runs in
 * that home unless `cwd` names a directory (a project with a trigger.config.ts).
 */
export async function cli(ctx, pat, args, { cwd } = {}) {
  const home = await profileHome(ctx, pat);
  try {
    const env = cliEnv(home);
    return await new Promise((resolve) => {
      execFile(
        process.execPath,
        [cliBin, ...args, "--skip-telemetry"],
        { cwd: cwd ?? home, env, timeout: CLI_TIMEOUT_MS, maxBuffer: 10 * 1024 * 1024 },
        (err, stdout, stderr) => resolve({ code: err ? (err.code ?? err.signal) : 0, stdout, stderr }),
      );
    });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/**
 * Run the installed CLI in `home` (a scratch HOME and XDG_CONFIG_HOME whose login state
 * persists between calls), as a person at a terminal outside CI would.
 */
export function cliIn(home, args) {
  const env = { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: path.join(home, "xdg"), NO_COLOR: "1" };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliBin, ...args, "--skip-telemetry"],
      { cwd: home, env, timeout: CLI_TIMEOUT_MS, maxBuffer: 10 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? (err.code ?? err.signal) : 0, stdout, stderr }),
    );
  });
}

export const describe = (r) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

export async function mint(ctx, pat, cap) {
  const r = await cli(ctx, pat, ["mint-token", "--ttl", "3600", "--cap", cap]);
  assert.equal(r.code, 0, describe(r));
  assert.match(r.stdout, UAT_RE, describe(r));
  return { ...r, token: r.stdout.trim() };
}

