// The realtime run feeds over the Electric-style long-poll protocol: one run
// (runs.subscribeToRun), runs by tag (runs.subscribeToRunsWithTag) and a batch's
// runs (runs.subscribeToBatch). A 4xx makes the 4.8.3 iterator hang silently,
// so every case here has an explicit timeout and passes the runner's abort
// signal to the subscription.

import { runs, tasks } from "@trigger.dev/sdk";
import { as, hex, newProject } from "../lib/api.mjs";
import { assert } from "../lib/check.mjs";

const REALTIME_TIMEOUT_MS = 30_000;

export default [
  {
    name: "realtime: subscribeToRun with the handle's token yields the QUEUED run",
    timeout: REALTIME_TIMEOUT_MS,
    async run({ ctx, signal, step }) {
      const p = await newProject(ctx);
      const handle = await as(ctx, p.prodKey, () => tasks.trigger("compat-task", { n: 3 }, { tags: ["live"] }));
      step("subscribing with handle.publicAccessToken, waiting for the first update");
      const first = await as(ctx, handle.publicAccessToken, async () => {
        for await (const run of runs.subscribeToRun(handle.id, { signal })) return run;
        throw new Error("the feed ended without yielding the run");
      });
      assert.equal(first.id, handle.id);
      assert.equal(first.status, "QUEUED");
      assert.equal(first.taskIdentifier, "compat-task");
      assert.deepEqual(first.tags, ["live"]);
      assert.deepEqual(first.payload, { n: 3 });
      assert.ok(first.createdAt instanceof Date && !Number.isNaN(first.createdAt.getTime()), "createdAt is a valid Date");
      assert.equal(first.finishedAt, undefined);
    },
  },
  {
    name: "realtime: subscribeToRun sees CANCELED after cancel and then ends",
    timeout: REALTIME_TIMEOUT_MS,
    async run({ ctx, signal, step }) {
      const p = await newProject(ctx);
      const statuses = await as(ctx, p.prodKey, async () => {
        const { id } = await tasks.trigger("compat-task", { n: 4 });
        const seen = [];
        step("waiting for the first update");
        for await (const run of runs.subscribeToRun(id, { signal })) {
          seen.push(run.status);
          if (seen.length === 1) {
            await runs.cancel(id);
            step(`saw ${seen.join(", ")}; canceled, waiting for a CANCELED update`);
          } else if (run.status === "CANCELED") {
            assert.ok(run.finishedAt instanceof Date, "a CANCELED run has finishedAt");
            step(`saw ${seen.join(", ")}; waiting for the feed to end on its own`);
          }
        }
        return seen;
      });
      assert.equal(statuses[0], "QUEUED");
      assert.equal(statuses.at(-1), "CANCELED");
    },
  },
  {
    name: "realtime: subscribeToRunsWithTag yields the tag's runs, then new and changed ones",
    timeout: REALTIME_TIMEOUT_MS,
    async run({ ctx, signal, step }) {
      const p = await newProject(ctx);
      const tag = `feed-${hex()}`;
      const seen = await as(ctx, p.prodKey, async () => {
        const first = await tasks.trigger("compat-task", { n: 1 }, { tags: [tag] });
        await tasks.trigger("compat-task", { n: 0 }, { tags: ["other"] });
        const seen = [];
        let second;
        step("subscribing; waiting for the run triggered before");
        for await (const run of runs.subscribeToRunsWithTag(tag, { createdAt: "1h" }, { signal })) {
          seen.push(`${run.payload.n}:${run.status}`);
          if (seen.length === 1) {
            second = await tasks.trigger("compat-task", { n: 2 }, { tags: [tag, "x"] });
            step("triggered a second run with the tag");
          } else if (run.id === second?.id && seen.length === 2) {
            await runs.cancel(first.id);
            step("canceled the first run");
          } else if (run.id === first.id && run.status === "CANCELED") {
            break;
          }
        }
        return seen;
      });
      assert.deepEqual(seen, ["1:QUEUED", "2:QUEUED", "1:CANCELED"]);
    },
  },
  {
    name: "realtime: subscribeToBatch with the batch's token yields its runs and their changes",
    timeout: REALTIME_TIMEOUT_MS,
    async run({ ctx, step }) {
      const p = await newProject(ctx);
      const batch = await as(ctx, p.prodKey, () =>
        tasks.batchTrigger("compat-task", [{ payload: { n: 1 } }, { payload: { n: 2 } }]),
      );
      step(`subscribing to ${batch.batchId} with its public token`);
      const seen = new Map();
      let canceled;
      await as(ctx, batch.publicAccessToken, async () => {
        for await (const run of runs.subscribeToBatch(batch.batchId)) {
          seen.set(run.id, run.status);
          if (seen.size === 2 && !canceled) {
            canceled = run.id;
            await as(ctx, p.prodKey, () => runs.cancel(canceled));
            step(`canceled ${canceled}`);
          } else if (run.id === canceled && run.status === "CANCELED") {
            break;
          }
        }
      });
      assert.equal(seen.size, 2);
      assert.equal(seen.get(canceled), "CANCELED");
    },
  },
];
