// Input streams with the official `trigger.dev dev` 4.8.3 as the worker: a task's
// `.once()`, `.on()` and `.wait()` get what the SDK's `.send()` sends from outside, in
// order; `.wait()` suspends the run in the engine until a record arrives. They share the
// waits cases' dev session.

import { runs, streams, tasks } from "@trigger.dev/sdk";
import { as, http } from "../lib/api.mjs";
import { assert, expectStatus } from "../lib/check.mjs";
import { sharedDev } from "../lib/dev.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The dev session the waits cases use (cases/waits.mjs), started by whichever runs first. */
const devSession = (ctx) => sharedDev(ctx, "waits");

const decisions = streams.input({ id: "decisions" });

async function finished(ctx, key, id, timeoutMs = 60_000) {
  return as(ctx, key, async () => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = await runs.retrieve(id);
      if (run.isCompleted) return run;
      if (Date.now() > deadline) throw new Error(`run ${id} still ${run.status} after ${timeoutMs / 1000}s`);
      await sleep(200);
    }
  });
}

/** Waits until the run's worker sees `status` as its execution status. */
async function until(ctx, key, id, status, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await http(ctx, "GET", `/engine/v1/dev/runs/${id}/snapshots/latest`, { token: key });
    expectStatus(r, 200);
    if (r.body.execution.snapshot.executionStatus === status) return;
    if (Date.now() > deadline) throw new Error(`run ${id} never reached ${status}`);
    await sleep(100);
  }
}

const send = (ctx, s, id, data) => as(ctx, s.devKey, () => decisions.send(id, data));
const trigger = (ctx, s, task) => as(ctx, s.devKey, () => tasks.trigger(task, {}));

export default [
  {
    name: "input streams: .once() gets the record sent to the running task",
    timeout: 90_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const { id } = await trigger(ctx, s, "input-once");
      await until(ctx, s.devKey, id, "EXECUTING");
      await send(ctx, s, id, { approved: true, n: 7 });
      const run = await finished(ctx, s.devKey, id);
      assert.equal(run.status, "COMPLETED", JSON.stringify(run.error));
      assert.deepEqual(run.output, { approved: true, n: 7 });
    },
  },
  {
    name: "input streams: .on() gets every record in order",
    timeout: 90_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const { id } = await trigger(ctx, s, "input-on");
      await until(ctx, s.devKey, id, "EXECUTING");
      for (const n of [1, 2, 3]) await send(ctx, s, id, { approved: n % 2 === 1, n });
      const run = await finished(ctx, s.devKey, id);
      assert.equal(run.status, "COMPLETED", JSON.stringify(run.error));
      assert.deepEqual(run.output, { seen: [1, 2, 3] });
    },
  },
  {
    name: "input streams: .wait() suspends the run until a record is sent, each time",
    timeout: 90_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const { id } = await trigger(ctx, s, "input-wait");
      for (const n of [1, 2]) {
        await until(ctx, s.devKey, id, "EXECUTING_WITH_WAITPOINTS");
        await send(ctx, s, id, { approved: true, n });
        if (n === 1) await until(ctx, s.devKey, id, "EXECUTING");
      }
      const run = await finished(ctx, s.devKey, id);
      assert.equal(run.status, "COMPLETED", JSON.stringify(run.error));
      assert.deepEqual(run.output, { first: 1, second: 2 });
    },
  },
];
