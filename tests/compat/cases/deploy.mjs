// Production with the unchanged CLI and no Docker: `trigger.dev deploy` of the compat task
// project with only a prod key (the CLI bundles locally and uploads the output; taskgate
// indexes it and promotes it), then prod runs executed by taskgate's own runner: output,
// retries, a wait for a child, cancellation, a second version deployed with --skip-promotion
// that runs only once `trigger.dev promote` makes it current, a task process that cannot
// read taskgate's data directory, and the deployed version's cron as a production schedule. The cases share one deployment per backend.

import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { runs, schedules, tasks } from "@trigger.dev/sdk";
import { RetrieveRunResponse } from "@trigger.dev/core/v3";
import { as, http, newProject } from "../lib/api.mjs";
import { assert, expectStatus } from "../lib/check.mjs";
import { devDir } from "../lib/dev.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const OUTPUT_LIMIT = 200_000;

/** Runs the official CLI in the compat task project with `key` as its access token. */
async function cli(ctx, ref, key, args, timeoutMs = 240_000) {
  const home = await mkdtemp(path.join(os.tmpdir(), "taskgate-compat-deploy-"));
  const bin = path.join(devDir, "node_modules", "trigger.dev", "dist", "esm", "index.js");
  const child = spawn(process.execPath, [bin, ...args, "--skip-update-check"], {
    cwd: devDir,
    env: {
      PATH: process.env.PATH,
      HOME: home,
      XDG_CONFIG_HOME: home,
      TRIGGER_ACCESS_TOKEN: key,
      TRIGGER_API_URL: ctx.url,
      TASKGATE_COMPAT_PROJECT_REF: ref,
      AI_AGENT: "taskgate-compat",
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  const append = (c) => {
    output += c.toString();
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
  };
  child.stdout.on("data", append);
  child.stderr.on("data", append);
  const code = await new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
      resolve("timeout");
    }, timeoutMs);
    child.on("exit", (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  await rm(home, { recursive: true, force: true });
  return { code, output };
}

/** Polls a run until it is completed (or failed, canceled…); returns the retrieved run. */
async function finished(ctx, key, id, timeoutMs = 60_000) {
  return as(ctx, key, async () => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = await runs.retrieve(id);
      if (run.isCompleted) return RetrieveRunResponse.parse(run) && run;
      if (Date.now() > deadline) throw new Error(`run ${id} still ${run.status} after ${timeoutMs / 1000}s`);
      await sleep(250);
    }
  });
}

/** This backend's deployed project: `{ref, key, version}`, deployed once. */
function deployed(ctx) {
  ctx.deployed ??= (async () => {
    const { ref, prodKey, pat } = await newProject(ctx);
    // The index controller reads the environment's variables before importing the tasks:
    // this one makes compat-every-minute declare a cron in the deployed version.
    const cron = await http(ctx, "POST", `/api/v1/projects/${ref}/envvars/prod`, {
      token: prodKey,
      body: { name: "COMPAT_DECLARE_CRON", value: "0 5 * * *" },
    });
    expectStatus(cron, 200);
    const { code, output } = await cli(ctx, ref, prodKey, ["deploy"]);
    if (code !== 0) throw new Error(`trigger.dev deploy exited ${code}:\n${output.slice(-4000)}`);
    const version = /Version (\d{8}\.\d+)/.exec(output)?.[1];
    if (!version) throw new Error(`no version in the deploy's output:\n${output.slice(-4000)}`);
    return { ref, key: prodKey, pat, version, output };
  })();
  return ctx.deployed;
}

const trigger = (ctx, d, task, payload) => as(ctx, d.key, () => tasks.trigger(task, payload));

export default [
  {
    name: "deploy: trigger.dev deploy with only a prod key builds, uploads, indexes and promotes a version",
    timeout: 300_000,
    async run({ ctx, step }) {
      step("trigger.dev deploy");
      const d = await deployed(ctx);
      assert.match(d.output, /is being deployed|was deployed/);
      const list = await http(ctx, "GET", "/api/v1/deployments", { token: d.key });
      expectStatus(list, 200);
      const mine = list.body.data.find((x) => x.version === d.version);
      assert.ok(mine, `version ${d.version} is listed`);
      assert.equal(mine.status, "DEPLOYED");
      const one = await http(ctx, "GET", `/api/v1/deployments/${mine.id}`, { token: d.key });
      expectStatus(one, 200);
      assert.equal(one.body.isCurrent, true);
      assert.ok(one.body.worker.tasks.some((t) => t.slug === "compat-hello"), "its tasks are indexed");
      // What `trigger.dev projects list` reads: the production deployment's runtime.
      const runtimes = await http(ctx, "GET", "/api/v1/projects/runtimes", { token: d.pat });
      expectStatus(runtimes, 200);
      const project = runtimes.body.find((p) => p.project.externalRef === d.ref);
      assert.equal(project?.deployment?.shortCode, one.body.shortCode, JSON.stringify(runtimes.body));
      assert.equal(project.deployment.nodeMajor, Number(process.versions.node.split(".")[0]));
    },
  },
  {
    name: "deploy: the promoted version's cron is a production schedule",
    timeout: 300_000,
    async run({ ctx }) {
      const d = await deployed(ctx);
      const list = await as(ctx, d.key, () => schedules.list());
      const declared = list.data.filter((s) => s.type === "DECLARATIVE");
      assert.deepEqual(
        declared.map((s) => [s.task, s.generator.expression, s.environments[0].type]),
        [["compat-every-minute", "0 5 * * *", "PRODUCTION"]],
        JSON.stringify(list.data),
      );
      assert.ok(declared[0].nextRun instanceof Date);
    },
  },
  {
    name: "deploy: a prod run executes on the deployed version and returns its output",
    timeout: 300_000,
    async run({ ctx }) {
      const d = await deployed(ctx);
      const { id } = await trigger(ctx, d, "compat-hello", { name: "prod" });
      const run = await finished(ctx, d.key, id);
      assert.equal(run.status, "COMPLETED");
      assert.deepEqual(run.output, { greeting: "Hello, prod!" });
      assert.equal(run.version, d.version);
    },
  },
  {
    name: "deploy: a deployed task that throws is retried, then fails with its error",
    timeout: 120_000,
    async run({ ctx }) {
      const d = await deployed(ctx);
      const { id } = await trigger(ctx, d, "compat-throws", { reason: "prod" });
      const run = await finished(ctx, d.key, id);
      assert.equal(run.status, "FAILED");
      assert.match(run.error.message, /Intentional failure: prod/);
      assert.equal(run.attemptCount, 3);
    },
  },
  {
    name: "deploy: a deployed parent waits for its child and gets its output",
    timeout: 120_000,
    async run({ ctx }) {
      const d = await deployed(ctx);
      const { id } = await trigger(ctx, d, "wait-parent", { n: 4 });
      const run = await finished(ctx, d.key, id, 90_000);
      assert.equal(run.status, "COMPLETED");
      assert.deepEqual(run.output, { ok: true, output: { doubled: 8 } });
    },
  },
  {
    name: "deploy: cancelling a deployed run stops its process within 2 s",
    timeout: 120_000,
    async run({ ctx, step }) {
      const d = await deployed(ctx);
      const { id } = await trigger(ctx, d, "compat-slow", {});
      await as(ctx, d.key, async () => {
        for (;;) {
          if ((await runs.retrieve(id)).status === "EXECUTING") break;
          await sleep(100);
        }
      });
      await sleep(1000);
      step("cancelling");
      const at = Date.now();
      await as(ctx, d.key, () => runs.cancel(id));
      for (;;) {
        const latest = await http(ctx, "GET", `/api/v1/runs/${id}/attempts`, { token: d.key });
        expectStatus(latest, 200);
        const last = latest.body.data.at(-1);
        if (last && last.status !== "EXECUTING") break;
        if (Date.now() - at > 2_000) throw new Error("the run's process had not stopped 2 s after the cancel");
        await sleep(50);
      }
      assert.equal((await finished(ctx, d.key, id)).status, "CANCELED");
    },
  },
  {
    name: "deploy: a deployed task cannot read taskgate's data directory nor see its variables",
    timeout: 120_000,
    async run({ ctx }) {
      const d = await deployed(ctx);
      const { id } = await trigger(ctx, d, "compat-probe", { path: path.join(ctx.dataDir, "admin-token") });
      const run = await finished(ctx, d.key, id);
      assert.equal(run.status, "COMPLETED");
      assert.notEqual(run.output.read, "read", "the admin token was readable");
      assert.deepEqual(run.output.taskgateVars, []);
    },
  },
  {
    name: "deploy: --skip-promotion keeps runs on the current version until trigger.dev promote",
    timeout: 360_000,
    async run({ ctx, step }) {
      const d = await deployed(ctx);
      step("trigger.dev deploy --skip-promotion");
      const second = await cli(ctx, d.ref, d.key, ["deploy", "--skip-promotion"]);
      assert.equal(second.code, 0, second.output.slice(-3000));
      const version = /Version (\d{8}\.\d+)/.exec(second.output)?.[1];
      assert.ok(version && version !== d.version, `a new version: ${version}`);
      const first = await finished(ctx, d.key, (await trigger(ctx, d, "compat-hello", { name: "a" })).id);
      assert.equal(first.version, d.version, "still the promoted version");
      step(`trigger.dev promote ${version}`);
      const promoted = await cli(ctx, d.ref, d.key, ["promote", version, "--env", "prod"]);
      assert.equal(promoted.code, 0, promoted.output.slice(-3000));
      const after = await finished(ctx, d.key, (await trigger(ctx, d, "compat-hello", { name: "b" })).id);
      assert.equal(after.version, version);
      d.version = version;
    },
  },
];
