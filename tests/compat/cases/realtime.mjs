// runs.subscribeToRun over the Electric-style long-poll feed
// (errors-runs-sdk §4.1). A 4xx makes the 4.8.3 iterator hang silently, so
// every case here has an explicit timeout and passes the runner's abort
// signal to the subscription.

import { runs, tasks } from "@trigger.dev/sdk";
import { as, newProject } from "../lib/api.mjs";
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
];
