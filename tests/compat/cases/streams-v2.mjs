// Output streams written from task code, with the official `trigger.dev dev` 4.8.3 as the
// worker: `streams.pipe`, `streams.writer`, `metadata.stream` and a defined stream's
// `.pipe()` create their stream (PUT) and write it as one long request of lines, and the
// SDK's readers (`streams.read`, a defined stream's `.read`) get every part in order, the
// read ending when the run finishes rather than at its inactivity timeout. They share the
// waits cases' dev session.

import { runs, streams, tasks } from "@trigger.dev/sdk";
import { as } from "../lib/api.mjs";
import { assert } from "../lib/check.mjs";
import { sharedDev } from "../lib/dev.mjs";

/** The dev session the waits cases use (cases/waits.mjs), started by whichever runs first. */
const devSession = (ctx) => sharedDev(ctx, "waits");

const definedText = streams.define({ id: "compat-defined" });
const N = 25;

/**
 * Triggers `task` and reads its stream `key` (through `read`) from before it starts until
 * the read ends by itself; returns the parts, how long the read took after the run finished,
 * and the run.
 */
async function triggerAndRead(ctx, s, task, read) {
  const { id } = await as(ctx, s.devKey, () => tasks.trigger(task, { n: N }));
  return as(ctx, s.devKey, async () => {
    // A generous inactivity timeout: the read must end because the run finished.
    const stream = await read(id, { timeoutInSeconds: 120 });
    const parts = [];
    for await (const part of stream) parts.push(part);
    const ended = Date.now();
    const run = await runs.retrieve(id);
    return { parts, run, ended };
  });
}

function check({ parts, run, ended }, prefix) {
  assert.equal(run.status, "COMPLETED", JSON.stringify(run.error));
  assert.deepEqual(parts, Array.from({ length: N }, (_, i) => `${prefix}${i}`));
  const after = ended - new Date(run.finishedAt).getTime();
  assert.ok(after < 15_000, `the read ended ${after} ms after the run finished`);
}

export default [
  {
    name: "streams v2: streams.pipe writes every part and streams.read ends with the run",
    timeout: 90_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      check(await triggerAndRead(ctx, s, "stream-pipe", (id, o) => streams.read(id, "piped", o)), "p");
    },
  },
  {
    name: "streams v2: streams.writer's parts reach the reader in order",
    timeout: 90_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      check(await triggerAndRead(ctx, s, "stream-writer", (id, o) => streams.read(id, "written", o)), "w");
    },
  },
  {
    name: "streams v2: metadata.stream forwards to the task and to readers",
    timeout: 90_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const result = await triggerAndRead(ctx, s, "stream-metadata", (id, o) => streams.read(id, "meta", o));
      check(result, "m");
      assert.deepEqual(result.run.output, { n: N, seen: N });
    },
  },
  {
    name: "streams v2: a defined stream's pipe and read",
    timeout: 90_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      check(await triggerAndRead(ctx, s, "stream-defined", (id, o) => definedText.read(id, o)), "d");
    },
  },
];
