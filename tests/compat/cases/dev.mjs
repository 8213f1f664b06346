// Runs that execute: the official `trigger.dev dev` (CLI 4.8.3) runs the task project in
// ../dev against the server, and the official SDK triggers, watches and cancels its runs.
// The cases share one dev session per backend and run in this order.

import { auth, runs, tasks } from "@trigger.dev/sdk";
import {
  ErrorGroupDetail,
  IgnoreErrorRequestBody,
  ListErrorsResponse,
  RetrieveRunResponse,
} from "@trigger.dev/core/v3";
import { as, http } from "../lib/api.mjs";
import { assert, expectStatus } from "../lib/check.mjs";
import { devSession, startDev } from "../lib/dev.mjs";
import { describe, mint } from "../lib/cli.mjs";
import { mcpSession } from "../lib/mcp.mjs";
import { fingerprint } from "../lib/fingerprint.mjs";

/** Polls a run until it is completed (or failed, canceled…); returns the retrieved run. */
async function finished(ctx, key, id, timeoutMs = 30_000) {
  return as(ctx, key, async () => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = await runs.retrieve(id);
      if (run.isCompleted) return RetrieveRunResponse.parse(run) && run;
      if (Date.now() > deadline) throw new Error(`run ${id} still ${run.status} after ${timeoutMs / 1000}s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
}

const session = (ctx) =>
  devSession(ctx, {
    // Triggered before the CLI starts: it waits in the queue until a worker connects.
    beforeStart: async (s) => {
      s.early = (await as(ctx, s.devKey, () => tasks.trigger("compat-hello", { name: "early" }))).id;
    },
  });

export default [
  {
    name: "dev: trigger.dev dev registers its worker and the run queued before it is executed",
    timeout: 150_000,
    async run({ ctx, step }) {
      step("starting trigger.dev dev");
      const s = await session(ctx);
      assert.match(s.output(), /Local worker ready .* -> \d{8}\.\d+/);
      step("waiting for the run triggered before the CLI started");
      const run = await finished(ctx, s.devKey, s.early);
      assert.equal(run.status, "COMPLETED");
      assert.deepEqual(run.output, { greeting: "Hello, early!" });
    },
  },
  {
    // 4.8.3 has no tasks.triggerAndPoll; runs.poll is what it offers for the same.
    name: "dev: a task's output, attempt and version come back (trigger, then runs.poll)",
    timeout: 60_000,
    async run({ ctx }) {
      const s = await session(ctx);
      const run = await as(ctx, s.devKey, async () => {
        const { id } = await tasks.trigger("compat-hello", { name: "Rust" });
        return runs.poll(id, { pollIntervalMs: 200 });
      });
      assert.equal(run.status, "COMPLETED");
      assert.deepEqual(run.output, { greeting: "Hello, Rust!" });
      const full = await finished(ctx, s.devKey, run.id);
      assert.equal(full.attemptCount, 1);
      assert.match(full.version ?? "", /^\d{8}\.\d+$/);
      assert.ok(full.startedAt && full.finishedAt, "timings are set");
    },
  },
  {
    name: "dev: a task that throws fails with its error as the SDK reads it, after 3 attempts",
    timeout: 60_000,
    async run({ ctx }) {
      const s = await session(ctx);
      const { id } = await as(ctx, s.devKey, () => tasks.trigger("compat-throws", { reason: "compat" }));
      const run = await finished(ctx, s.devKey, id);
      assert.equal(run.status, "FAILED");
      assert.equal(run.error?.name, "TypeError");
      assert.equal(run.error?.message, "Intentional failure: compat");
      assert.match(run.error?.stackTrace ?? "", /tasks\.ts/);
      assert.equal(run.attemptCount, 3, "the default retry settings allow three attempts");
      const attempts = await http(ctx, "GET", `/api/v1/runs/${id}/attempts`, { token: s.devKey });
      expectStatus(attempts, 200);
      assert.deepEqual(attempts.body.data.map((a) => a.status), ["FAILED", "FAILED", "FAILED"]);
    },
  },
  {
    name: "dev: a task that fails twice succeeds on its third attempt",
    timeout: 60_000,
    async run({ ctx }) {
      const s = await session(ctx);
      const { id } = await as(ctx, s.devKey, () => tasks.trigger("compat-flaky", {}));
      const run = await finished(ctx, s.devKey, id);
      assert.equal(run.status, "COMPLETED");
      assert.deepEqual(run.output, { attempt: 3 });
      assert.equal(run.attemptCount, 3);
    },
  },
  {
    name: "dev: a run whose process dies of an uncaught exception is retried and succeeds",
    timeout: 60_000,
    async run({ ctx }) {
      const s = await session(ctx);
      const { id } = await as(ctx, s.devKey, () => tasks.trigger("compat-uncaught", {}));
      const run = await finished(ctx, s.devKey, id, 45_000);
      assert.equal(run.status, "COMPLETED");
      assert.deepEqual(run.output, { attempt: 2 });
    },
  },
  {
    name: "dev: a task with maxAttempts 1 that throws gets one attempt",
    timeout: 60_000,
    async run({ ctx }) {
      const s = await session(ctx);
      const { id } = await as(ctx, s.devKey, () => tasks.trigger("compat-once", {}));
      const run = await finished(ctx, s.devKey, id);
      assert.equal(run.status, "FAILED");
      assert.equal(run.error?.message, "no second chance");
      assert.equal(run.attemptCount, 1);
    },
  },
  {
    name: "dev: a failed run is an error group whose id is its error's fingerprint, and lists the run",
    timeout: 60_000,
    async run({ ctx }) {
      const s = await session(ctx);
      const { id } = await as(ctx, s.devKey, () => tasks.trigger("compat-once", {}));
      const run = await finished(ctx, s.devKey, id);
      assert.equal(run.status, "FAILED");
      // The worker reported a thrown Error: a BUILT_IN_ERROR with this name and message.
      const fp = fingerprint({ type: "BUILT_IN_ERROR", name: run.error.name, message: run.error.message });
      const list = await http(ctx, "GET", "/api/v1/errors?filter[taskIdentifier]=compat-once", { token: s.devKey });
      expectStatus(list, 200);
      const page = ListErrorsResponse.parse(list.body);
      const group = page.data.find((g) => g.id === `error_${fp}`);
      assert.ok(group, `no group error_${fp} in ${JSON.stringify(list.body)}`);
      assert.equal(group.errorMessage, "no second chance");
      assert.equal(group.status, "unresolved");
      const detail = await http(ctx, "GET", `/api/v1/errors/error_${fp}`, { token: s.devKey });
      expectStatus(detail, 200);
      const parsed = ErrorGroupDetail.parse(detail.body);
      assert.match(parsed.affectedVersions[0] ?? "", /^\d{8}\.\d+$/);
      const failed = await http(ctx, "GET", `/api/v1/runs?filter[error]=error_${fp}`, { token: s.devKey });
      expectStatus(failed, 200);
      assert.ok(failed.body.data.some((r) => r.id === id), JSON.stringify(failed.body));
      s.errorId = `error_${fp}`;
    },
  },
  {
    name: "dev: triage with a JWT exchanged from a CLI-minted user-actor token names the user",
    timeout: 90_000,
    async run({ ctx }) {
      const s = await session(ctx);
      assert.ok(s.errorId, "the previous case made a group");
      const me = await http(ctx, "GET", "/api/v2/whoami", { token: s.pat });
      const { token: uat } = await mint(ctx, s.pat, "read:apiKeys,read:errors,write:errors");
      const exchanged = await http(ctx, "POST", `/api/v1/projects/${s.ref}/dev/jwt`, { token: uat, body: {} });
      expectStatus(exchanged, 200);
      const jwt = exchanged.body.token;
      const resolved = await http(ctx, "POST", `/api/v1/errors/${s.errorId}/resolve`, {
        token: jwt,
        body: { resolvedInVersion: "20990101.1" },
      });
      expectStatus(resolved, 200);
      const r = ErrorGroupDetail.parse(resolved.body);
      assert.equal(r.status, "resolved");
      assert.equal(r.resolvedBy, me.body.userId);
      const body = IgnoreErrorRequestBody.parse({ duration: 3_600_000, reason: "compat" });
      const ignored = await http(ctx, "POST", `/api/v1/errors/${s.errorId}/ignore`, { token: s.devKey, body });
      expectStatus(ignored, 200);
      const i = ErrorGroupDetail.parse(ignored.body);
      assert.equal(i.status, "ignored");
      assert.equal(i.ignoredByUserId, null, "an environment key acts for nobody");
      const history = await http(ctx, "GET", `/api/v1/errors/${s.errorId}/activity`, { token: s.devKey });
      expectStatus(history, 200);
      assert.deepEqual(
        history.body.data.map((a) => [a.action, a.actorUserId]),
        [["ignored", null], ["resolved", me.body.userId]],
        describe({ code: 0, stdout: JSON.stringify(history.body), stderr: "" }),
      );
    },
  },
  {
    name: "dev: canceling an executing run stops it within 2 s",
    timeout: 60_000,
    async run({ ctx, step }) {
      const s = await session(ctx);
      const { id } = await as(ctx, s.devKey, () => tasks.trigger("compat-slow", {}));
      step("waiting for the run to execute");
      await as(ctx, s.devKey, async () => {
        for (;;) {
          const run = await runs.retrieve(id);
          if (run.status === "EXECUTING") break;
          await new Promise((r) => setTimeout(r, 100));
        }
      });
      // Let the attempt settle into its process.
      await new Promise((r) => setTimeout(r, 1000));
      step("canceling");
      const canceledAt = Date.now();
      await as(ctx, s.devKey, () => runs.cancel(id));
      // The worker confirms by completing the attempt, which finishes the execution.
      for (;;) {
        const latest = await http(ctx, "GET", `/engine/v1/dev/runs/${id}/snapshots/latest`, { token: s.devKey });
        expectStatus(latest, 200);
        if (latest.body.execution.snapshot.executionStatus === "FINISHED") break;
        if (Date.now() - canceledAt > 2_000) throw new Error(`the worker had not stopped the run 2 s after the cancel (${latest.body.execution.snapshot.executionStatus})`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const run = await finished(ctx, s.devKey, id);
      assert.equal(run.status, "CANCELED");
    },
  },
  {
    name: "dev: a batchTrigger of 20 runs completes",
    timeout: 90_000,
    async run({ ctx }) {
      const s = await session(ctx);
      const items = Array.from({ length: 20 }, (_, i) => ({ payload: { name: `n${i}` } }));
      const handle = await as(ctx, s.devKey, () => tasks.batchTrigger("compat-hello", items));
      assert.equal(handle.runCount, 20);
      const ids = [];
      await as(ctx, s.devKey, async () => {
        for await (const run of runs.list({ batch: handle.batchId })) ids.push(run.id);
      });
      assert.equal(ids.length, 20);
      const done = await Promise.all(ids.map((id) => finished(ctx, s.devKey, id, 60_000)));
      assert.deepEqual(
        done.map((r) => r.output.greeting).sort(),
        items.map((i) => `Hello, ${i.payload.name}!`).sort(),
      );
    },
  },
  {
    name: "dev: a task's log records are kept as its log view",
    timeout: 60_000,
    async run({ ctx }) {
      const s = await session(ctx);
      const { id } = await as(ctx, s.devKey, () => tasks.trigger("compat-logs", { marker: "m1" }));
      const run = await finished(ctx, s.devKey, id);
      assert.equal(run.status, "COMPLETED");
      // The worker flushes its exporter as the attempt ends; records may land just after.
      const deadline = Date.now() + 10_000;
      let logs;
      for (;;) {
        const res = await http(ctx, "GET", `/api/v1/runs/${id}/logs`, { token: s.devKey });
        expectStatus(res, 200);
        logs = res.body.data;
        if (logs.length >= 3 || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const seen = logs.map((l) => [l.severity, l.message]);
      assert.deepEqual(
        seen.filter(([, m]) => /structured line|a warning|plain console line m1/.test(m)),
        [["info", "structured line"], ["warn", "a warning"], ["log", "plain console line m1"]],
        JSON.stringify(seen),
      );
      const structured = logs.find((l) => l.message === "structured line");
      assert.deepEqual(structured.attributes, { marker: "m1", n: 1 });
      assert.equal(structured.attemptNumber, 1);
    },
  },
  {
    name: "dev: subscribeToRun sees the run execute and complete",
    timeout: 60_000,
    async run({ ctx, signal }) {
      const s = await session(ctx);
      const { id } = await as(ctx, s.devKey, () => tasks.trigger("compat-hello", { name: "feed" }, { delay: "2s" }));
      const statuses = [];
      await as(ctx, s.devKey, async () => {
        for await (const run of runs.subscribeToRun(id, { signal })) {
          if (statuses.at(-1) !== run.status) statuses.push(run.status);
          if (run.isCompleted) break;
        }
      });
      assert.equal(statuses[0], "DELAYED", statuses.join(" → "));
      assert.equal(statuses.at(-1), "COMPLETED", statuses.join(" → "));
      const order = ["DELAYED", "QUEUED", "DEQUEUED", "EXECUTING", "COMPLETED"];
      const ranks = statuses.map((st) => order.indexOf(st));
      assert.ok(ranks.every((r, i) => r >= 0 && (i === 0 || r > ranks[i - 1])), statuses.join(" → "));
    },
  },
  {
    name: "dev: the MCP server reads the current worker, triggers a task and waits for its run",
    timeout: 120_000,
    async run({ ctx, step }) {
      const s = await session(ctx);
      step("starting trigger.dev mcp");
      const mcp = await mcpSession(ctx, s.pat, s.ref);
      try {
        const ok = async (name, args) => {
          const r = await mcp.call(name, { projectRef: s.ref, environment: "dev", ...args });
          assert.equal(r.isError, false, `${name} failed: ${r.text}`);
          return r.text;
        };
        assert.match(await ok("get_current_worker"), /- compat-hello.* in src\/trigger\/tasks\.ts/);
        assert.match(await ok("get_task_schema", { taskSlug: "compat-hello" }), /## compat-hello/);
        const triggered = await ok("trigger_task", { taskId: "compat-hello", payload: { name: "MCP" } });
        assert.doesNotMatch(triggered, /not connected/, "the running CLI counts as connected");
        const id = triggered.match(/run_[A-Za-z0-9]+/)?.[0];
        assert.ok(id, triggered);
        step(`waiting for ${id} through wait_for_run_to_complete`);
        const done = await ok("wait_for_run_to_complete", { runId: id, timeoutInSeconds: 60 });
        assert.match(done, /Status: completed/);
        assert.match(done, /Hello, MCP!/);
        const details = await ok("get_run_details", { runId: id });
        assert.match(details, /Attempt 1 \[COMPLETED\]/);
        // The worker's own spans, under taskgate's attempt span, not beside it.
        assert.match(details, /run\(\) \[COMPLETED\]/, details);
        assert.equal(details.match(/Attempt 1 \[/g)?.length, 1, details);
      } finally {
        await mcp.close();
      }
    },
  },
  {
    name: "dev: a CLI killed with a run in flight has it canceled by its watchdog",
    timeout: 90_000,
    async run({ ctx, step }) {
      const s = await session(ctx);
      const { id } = await as(ctx, s.devKey, () => tasks.trigger("compat-slow", {}));
      await as(ctx, s.devKey, async () => {
        for (;;) {
          if ((await runs.retrieve(id)).status === "EXECUTING") break;
          await new Promise((r) => setTimeout(r, 100));
        }
      });
      const status = await http(ctx, "GET", `/api/v1/projects/${s.ref}/dev-status`, { token: s.pat });
      expectStatus(status, 200);
      assert.equal(status.body.isConnected, true, "the running CLI counts as connected");
      step("killing the CLI");
      process.kill(s.pid, "SIGKILL");
      const run = await finished(ctx, s.devKey, id, 60_000);
      assert.equal(run.status, "CANCELED");
    },
  },
  {
    name: "dev: trigger.dev dev --branch creates a development branch and runs its tasks",
    timeout: 180_000,
    async run({ ctx, step }) {
      step("starting trigger.dev dev --branch feat-x");
      const s = await startDev(ctx, { args: ["--branch", "feat-x"] });
      try {
        const run = await auth.withAuth({ accessToken: s.devKey, baseURL: ctx.url, previewBranch: "feat-x" }, async () => {
          const { id } = await tasks.trigger("compat-hello", { name: "branch" });
          return runs.poll(id, { pollIntervalMs: 200 });
        });
        assert.equal(run.status, "COMPLETED");
        assert.deepEqual(run.output, { greeting: "Hello, branch!" });
        // The run is the branch's: the development environment itself does not have it.
        expectStatus(await http(ctx, "GET", `/api/v3/runs/${run.id}`, { token: s.devKey }), 404);
      } finally {
        await s.stop();
      }
    },
  },
];
