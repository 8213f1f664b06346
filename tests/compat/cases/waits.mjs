// Waits with the official `trigger.dev dev` 4.8.3 as the worker and the SDK as the client:
// triggerAndWait (with a failing child), batchTriggerAndWait of 20 with mixed results,
// wait.for past the SDK's local 5 s, wait tokens completed by the API, by their callback URL
// and by their timeout, a parent and its child on a queue of one, a queue of one under
// concurrent runs, cancelling a waiting run, a restart of taskgate while a run waits, and
// (PostgreSQL) two nodes firing a timer once. They share one dev session of their own (the
// shared one of cases/dev.mjs is killed by one of its cases) with the packets cases.

import { queues, runs, tasks, wait } from "@trigger.dev/sdk";
import { RetrieveRunResponse } from "@trigger.dev/core/v3";
import { as, http } from "../lib/api.mjs";
import { assert, expectStatus } from "../lib/check.mjs";
import { sharedDev } from "../lib/dev.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The waits' `trigger.dev dev`, started on first use, one per backend run. */
const devSession = (ctx) => sharedDev(ctx, "waits");

/** Polls a run until it is completed (or failed, canceled…); returns the retrieved run. */
async function finished(ctx, key, id, timeoutMs = 30_000) {
  return as(ctx, key, async () => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = await runs.retrieve(id);
      if (run.isCompleted) return RetrieveRunResponse.parse(run) && run;
      if (Date.now() > deadline) throw new Error(`run ${id} still ${run.status} after ${timeoutMs / 1000}s`);
      await sleep(200);
    }
  });
}

/** The run's latest snapshot, as its worker reads it. */
async function snapshot(ctx, key, id) {
  const r = await http(ctx, "GET", `/engine/v1/dev/runs/${id}/snapshots/latest`, { token: key });
  expectStatus(r, 200);
  return r.body.execution;
}

/** Waits until the run waits (`EXECUTING_WITH_WAITPOINTS`). */
async function waiting(ctx, key, id, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await snapshot(ctx, key, id);
    if (s.snapshot.executionStatus === "EXECUTING_WITH_WAITPOINTS") return s;
    if (Date.now() > deadline) throw new Error(`run ${id} never waited (${s.snapshot.executionStatus})`);
    await sleep(100);
  }
}

const trigger = (ctx, s, task, payload) => as(ctx, s.devKey, () => tasks.trigger(task, payload));

/** Sums a counter over the servers' /metrics. */
async function counter(urls, name) {
  let total = 0;
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const line of text.split("\n")) {
      if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total += Number(line.split(" ").pop());
    }
  }
  return total;
}

export default [
  {
    name: "waits: triggerAndWait hands the child's output to its parent",
    timeout: 90_000,
    async run({ ctx, step }) {
      const s = await devSession(ctx);
      step("triggering the parent");
      const { id } = await trigger(ctx, s, "wait-parent", { n: 21 });
      const run = await finished(ctx, s.devKey, id, 60_000);
      assert.equal(run.status, "COMPLETED");
      assert.deepEqual(run.output, { ok: true, output: { doubled: 42 } });
    },
  },
  {
    name: "waits: a failing child reaches its parent as ok: false with its error",
    timeout: 60_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const { id } = await trigger(ctx, s, "wait-parent", { n: 1, fail: true });
      const run = await finished(ctx, s.devKey, id, 45_000);
      assert.equal(run.status, "COMPLETED");
      assert.equal(run.output.ok, false);
      assert.match(run.output.error, /child failed: asked to/);
    },
  },
  {
    name: "waits: batchTriggerAndWait of 20 gets every result in order, failures included",
    timeout: 120_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const { id } = await trigger(ctx, s, "wait-batch", { count: 20 });
      const run = await finished(ctx, s.devKey, id, 100_000);
      assert.equal(run.status, "COMPLETED");
      const want = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? i * 2 : `error: child failed: item ${i}`));
      assert.deepEqual(run.output, want);
    },
  },
  {
    name: "waits: wait.for 8 s waits in the engine and resumes on time",
    timeout: 60_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const { id } = await trigger(ctx, s, "wait-sleeper", { seconds: 8 });
      const during = await waiting(ctx, s.devKey, id);
      assert.equal(during.run.status, "EXECUTING");
      const run = await finished(ctx, s.devKey, id, 40_000);
      assert.equal(run.status, "COMPLETED");
      assert.ok(run.output.waitedMs >= 8_000, `waited ${run.output.waitedMs} ms`);
      assert.ok(run.output.waitedMs < 8_000 + 6_000, `resumed late: ${run.output.waitedMs} ms`);
    },
  },
  {
    name: "waits: wait.forToken resumes with what completeToken sends, and at once if done before",
    timeout: 60_000,
    async run({ ctx, step }) {
      const s = await devSession(ctx);
      const token = await as(ctx, s.devKey, () => wait.createToken({ tags: ["compat"], timeout: "10m" }));
      assert.match(token.id, /^waitpoint_/);
      assert.ok(token.publicAccessToken, "the token comes with its own access token");
      const { id } = await trigger(ctx, s, "wait-token", { token: token.id });
      await waiting(ctx, s.devKey, id);
      step("completing with the token's own access token");
      await as(ctx, token.publicAccessToken, () => wait.completeToken(token.id, { approved: true }));
      const run = await finished(ctx, s.devKey, id);
      assert.deepEqual(run.output, { ok: true, output: { approved: true } });
      const retrieved = await as(ctx, s.devKey, () => wait.retrieveToken(token.id));
      assert.equal(retrieved.status, "COMPLETED");
      step("a token completed before the wait");
      const done = await as(ctx, s.devKey, () => wait.createToken({}));
      await as(ctx, s.devKey, () => wait.completeToken(done.id, { early: 1 }));
      const { id: second } = await trigger(ctx, s, "wait-token", { token: done.id });
      const run2 = await finished(ctx, s.devKey, second);
      assert.deepEqual(run2.output, { ok: true, output: { early: 1 } });
      step("listing by tag");
      const listed = [];
      await as(ctx, s.devKey, async () => {
        for await (const t of wait.listTokens({ tags: ["compat"], status: ["COMPLETED"] })) listed.push(t.id);
      });
      assert.ok(listed.includes(token.id), `listed ${listed}`);
      assert.ok(!listed.includes(done.id));
    },
  },
  {
    name: "waits: a token's callback URL completes it with a plain POST",
    timeout: 60_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const token = await as(ctx, s.devKey, () => wait.createToken({}));
      const { id } = await trigger(ctx, s, "wait-token", { token: token.id });
      await waiting(ctx, s.devKey, id);
      const res = await fetch(token.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ from: "a webhook", n: 3 }),
      });
      assert.equal(res.status, 200, await res.text());
      const run = await finished(ctx, s.devKey, id);
      assert.deepEqual(run.output, { ok: true, output: { from: "a webhook", n: 3 } });
      const forged = await fetch(token.url.replace(/.$/, (c) => (c === "0" ? "1" : "0")), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      assert.equal(forged.status, 401);
    },
  },
  {
    name: "waits: a token that times out resumes the run with a timeout error",
    timeout: 60_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const token = await as(ctx, s.devKey, () => wait.createToken({ timeout: "3s" }));
      const { id } = await trigger(ctx, s, "wait-token", { token: token.id });
      const run = await finished(ctx, s.devKey, id);
      assert.equal(run.output.ok, false);
      assert.equal(run.output.name, "WaitpointTimeoutError");
      assert.match(run.output.error, /^Waitpoint timed out at /);
      const retrieved = await as(ctx, s.devKey, () => wait.retrieveToken(token.id));
      assert.equal(retrieved.status, "TIMED_OUT");
    },
  },
  {
    name: "waits: a parent and its child on a queue with concurrencyLimit 1 both complete",
    timeout: 60_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const { id } = await trigger(ctx, s, "queue-parent", {});
      const run = await finished(ctx, s.devKey, id, 45_000);
      assert.equal(run.status, "COMPLETED");
      assert.deepEqual(run.output, { childOk: true, child: { child: true } });
    },
  },
  {
    name: "queues: runs of a queue with concurrencyLimit 1 never run two at once",
    timeout: 90_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const ids = await Promise.all(
        Array.from({ length: 6 }, async () => (await trigger(ctx, s, "queue-hold", {})).id),
      );
      const done = await Promise.all(ids.map((id) => finished(ctx, s.devKey, id, 60_000)));
      const spans = done.map((r) => r.output).sort((a, b) => a.start - b.start);
      for (let i = 1; i < spans.length; i++) {
        assert.ok(spans[i].start >= spans[i - 1].end, `runs ${i - 1} and ${i} overlapped: ${JSON.stringify(spans)}`);
      }
    },
  },
  {
    name: "queues: the SDK reads, pauses, resumes and overrides a queue; a paused queue's run waits",
    timeout: 90_000,
    async run({ ctx, step }) {
      const s = await devSession(ctx);
      const single = { type: "custom", name: "compat-single" };
      const q = await as(ctx, s.devKey, () => queues.retrieve(single));
      assert.match(q.id, /^queue_/);
      assert.equal(q.type, "custom");
      assert.equal(q.concurrencyLimit, 1);
      const page = await as(ctx, s.devKey, () => queues.list({ perPage: 100 }));
      assert.ok(page.data.some((x) => x.id === q.id), "the list holds the queue");
      assert.ok(page.data.some((x) => x.type === "task" && x.name === "debounced"), "and tasks' own queues");
      assert.equal((await as(ctx, s.devKey, () => queues.retrieve(q.id))).name, "compat-single");
      try {
        step("pausing compat-single");
        assert.equal((await as(ctx, s.devKey, () => queues.pause(single))).paused, true);
        const { id } = await trigger(ctx, s, "queue-hold", {});
        await sleep(3_000);
        const held = await as(ctx, s.devKey, () => runs.retrieve(id));
        assert.equal(held.status, "QUEUED", "a paused queue starts nothing");
        assert.ok((await as(ctx, s.devKey, () => queues.retrieve(single))).queued >= 1);
        step("resuming");
        assert.equal((await as(ctx, s.devKey, () => queues.resume(single))).paused, false);
        assert.equal((await finished(ctx, s.devKey, id, 30_000)).status, "COMPLETED");
      } finally {
        await as(ctx, s.devKey, () => queues.resume(single));
      }
      const over = await as(ctx, s.devKey, () => queues.overrideConcurrencyLimit(q.id, 2));
      assert.equal(over.concurrency.override, 2);
      assert.equal(over.concurrency.base, 1);
      assert.ok(over.concurrency.overriddenAt instanceof Date);
      const reset = await as(ctx, s.devKey, () => queues.resetConcurrencyLimit(q.id));
      assert.equal(reset.concurrencyLimit, 1);
      assert.equal(reset.concurrency.override, null);
    },
  },
  {
    name: "waits: cancelling a waiting parent stops it within 2 s and cancels its child",
    timeout: 60_000,
    async run({ ctx, step }) {
      const s = await devSession(ctx);
      const { id } = await trigger(ctx, s, "wait-for-slow", {});
      await waiting(ctx, s.devKey, id);
      const child = await as(ctx, s.devKey, async () => {
        for (;;) {
          const page = await runs.list({ taskIdentifier: "wait-slow-child", status: ["EXECUTING"] });
          if (page.data.length > 0) return page.data[0].id;
          await sleep(100);
        }
      });
      step("cancelling the parent");
      const at = Date.now();
      await as(ctx, s.devKey, () => runs.cancel(id));
      for (;;) {
        const latest = await snapshot(ctx, s.devKey, id);
        if (latest.snapshot.executionStatus === "FINISHED") break;
        if (Date.now() - at > 2_000) throw new Error(`still ${latest.snapshot.executionStatus} 2 s after the cancel`);
        await sleep(50);
      }
      assert.equal((await finished(ctx, s.devKey, id)).status, "CANCELED");
      assert.equal((await finished(ctx, s.devKey, child)).status, "CANCELED");
    },
  },
  {
    name: "waits: a trigger locked to the run's version is refused for a task or queue it lacks",
    timeout: 60_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const { id } = await trigger(ctx, s, "locked-trigger", {});
      const run = await finished(ctx, s.devKey, id);
      assert.equal(run.status, "COMPLETED", JSON.stringify(run.error));
      assert.match(run.output.task, /Task 'no-such-task' not found on locked version '\d{8}\.\d+'/);
      assert.match(run.output.queue, /Specified queue 'no-such-queue' not found or not associated with locked version/);
    },
  },
  {
    name: "waits: debounced triggers run once, with the first payload (leading) or the last (trailing)",
    timeout: 60_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      for (const [mode, expected] of [["leading", 1], ["trailing", 3]]) {
        const debounce = { key: `compat-${mode}-${Date.now()}`, delay: "2s", mode };
        const ids = [];
        for (const n of [1, 2, 3]) {
          ids.push((await as(ctx, s.devKey, () => tasks.trigger("debounced", { n }, { debounce }))).id);
        }
        assert.equal(new Set(ids).size, 1, `${mode}: one run for the key, got ${ids}`);
        const run = await finished(ctx, s.devKey, ids[0]);
        assert.equal(run.status, "COMPLETED", JSON.stringify(run.error));
        assert.deepEqual(run.output, { n: expected }, mode);
      }
    },
  },
  {
    name: "waits: a run waiting on wait.for resumes after taskgate is killed and restarted",
    timeout: 120_000,
    async run({ ctx, step }) {
      const s = await devSession(ctx);
      const { id } = await trigger(ctx, s, "wait-sleeper", { seconds: 20 });
      await waiting(ctx, s.devKey, id);
      step("killing and restarting taskgate");
      await ctx.restartServer({ signal: "SIGKILL" });
      const run = await finished(ctx, s.devKey, id, 90_000);
      assert.equal(run.status, "COMPLETED");
      assert.ok(run.output.waitedMs >= 20_000, `waited ${run.output.waitedMs} ms`);
    },
  },
  {
    name: "waits: with two nodes on one database each timer fires once",
    backends: ["postgres"],
    timeout: 120_000,
    async run({ ctx, step }) {
      const s = await devSession(ctx);
      step("starting a second node");
      const node = await ctx.secondNode();
      const urls = [ctx.url, node.url];
      const before = await counter(urls, "taskgate_waitpoint_timers_fired_total");
      const ids = await Promise.all(
        Array.from({ length: 4 }, async () => (await trigger(ctx, s, "wait-sleeper", { seconds: 6 })).id),
      );
      const done = await Promise.all(ids.map((id) => finished(ctx, s.devKey, id, 60_000)));
      for (const run of done) assert.equal(run.status, "COMPLETED");
      const fired = (await counter(urls, "taskgate_waitpoint_timers_fired_total")) - before;
      assert.equal(fired, 4, `timers fired ${fired} times for 4 waits`);
    },
  },
];
