// The runs API as the SDK uses it (errors-runs-sdk §3): trigger options and
// idempotency, list paging, retrieve, cancel, replay, batch trigger and batch.retrieve.
// Nothing executes tasks here, so triggered runs stay QUEUED.

import { batch as sdkBatch, runs, tasks } from "@trigger.dev/sdk";
import { ListRunResponseItem } from "@trigger.dev/core/v3";
import { as, hex, http, newProject } from "../lib/api.mjs";
import { assert, expectError, expectRunId } from "../lib/check.mjs";

const trigger = (n, options) => tasks.trigger("compat-task", { n }, options);

export default [
  {
    name: "runs: trigger with tags, idempotencyKey, ttl, metadata and maxAttempts",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const key = `compat-${hex()}`;
      const options = { tags: ["compat", "second"], idempotencyKey: key, ttl: "10m", metadata: { a: 1 }, maxAttempts: 2 };
      await as(ctx, p.prodKey, async () => {
        const first = await trigger(1, options);
        expectRunId(first.id);
        assert.notEqual(first.isCached, true);
        const run = await runs.retrieve(first.id);
        assert.deepEqual([...run.tags].sort(), ["compat", "second"]);
        assert.deepEqual(run.metadata, { a: 1 });
        assert.equal(run.ttl, "10m");
        assert.equal(run.idempotencyKey, key);
        const again = await trigger(2, options);
        assert.equal(again.id, first.id, "same idempotency key must return the same run");
        assert.equal(again.isCached, true);
      });
    },
  },
  {
    name: "runs: a different idempotency key creates a different run",
    async run({ ctx }) {
      const p = await newProject(ctx);
      await as(ctx, p.prodKey, async () => {
        const a = await trigger(1, { idempotencyKey: `a-${hex()}` });
        const b = await trigger(1, { idempotencyKey: `b-${hex()}` });
        assert.notEqual(a.id, b.id);
      });
    },
  },
  {
    name: "runs: list pages with limit 2 over 5 runs and sees each once",
    async run({ ctx }) {
      const p = await newProject(ctx);
      await as(ctx, p.prodKey, async () => {
        const ids = [];
        for (let n = 0; n < 5; n++) ids.push((await trigger(n)).id);
        const first = await runs.list({ limit: 2 });
        assert.equal(first.data.length, 2);
        assert.equal(first.hasNextPage(), true);
        // Newest first (errors-runs-sdk §3.3).
        assert.deepEqual(first.data.map((r) => r.id), [ids[4], ids[3]]);
        const seen = [];
        for await (const run of runs.list({ limit: 2 })) {
          ListRunResponseItem.parse(run);
          seen.push(run.id);
        }
        assert.equal(seen.length, 5, `saw ${seen.length} runs: ${seen.join(",")}`);
        assert.deepEqual([...seen].sort(), [...ids].sort());
      });
    },
  },
  {
    name: "runs: list filters by tag and status",
    async run({ ctx }) {
      const p = await newProject(ctx);
      await as(ctx, p.prodKey, async () => {
        const tagged = (await trigger(1, { tags: ["pick-me"] })).id;
        await trigger(2, { tags: ["other"] });
        const byTag = [];
        for await (const run of runs.list({ tag: "pick-me" })) byTag.push(run.id);
        assert.deepEqual(byTag, [tagged]);
        const canceled = [];
        await runs.cancel(tagged);
        for await (const run of runs.list({ status: ["CANCELED"] })) canceled.push(run.id);
        assert.deepEqual(canceled, [tagged]);
      });
    },
  },
  {
    name: "runs: retrieve shows QUEUED, tags, taskIdentifier and payload",
    async run({ ctx }) {
      const p = await newProject(ctx);
      await as(ctx, p.prodKey, async () => {
        const { id } = await trigger(7, { tags: ["retrieve-me"] });
        const run = await runs.retrieve(id);
        assert.equal(run.id, id);
        assert.equal(run.status, "QUEUED");
        assert.equal(run.taskIdentifier, "compat-task");
        assert.deepEqual(run.tags, ["retrieve-me"]);
        assert.deepEqual(run.payload, { n: 7 });
        assert.equal(run.isQueued, true);
        assert.equal(run.isCompleted, false);
        assert.equal(run.isTest, false);
      });
    },
  },
  {
    name: "runs: retrieve of an unknown run is 404 Not found",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const res = await http(ctx, "GET", "/api/v3/runs/run_doesnotexist0000000000", { token: p.prodKey });
      expectError(res, 404, "Not found");
    },
  },
  {
    name: "runs: another project's run is not visible (404)",
    async run({ ctx }) {
      const a = await newProject(ctx);
      const b = await newProject(ctx);
      const { id } = await as(ctx, a.prodKey, () => trigger(1));
      const res = await http(ctx, "GET", `/api/v3/runs/${id}`, { token: b.prodKey });
      expectError(res, 404, "Not found");
    },
  },
  {
    name: "runs: cancel then retrieve shows CANCELED",
    async run({ ctx }) {
      const p = await newProject(ctx);
      await as(ctx, p.prodKey, async () => {
        const { id } = await trigger(1);
        const canceled = await runs.cancel(id);
        assert.equal(canceled.id, id);
        const run = await runs.retrieve(id);
        assert.equal(run.status, "CANCELED");
        assert.equal(run.isCancelled, true);
        assert.equal(run.isCompleted, true);
        assert.equal(run.isQueued, false);
        // Cancelling again is idempotent.
        assert.equal((await runs.cancel(id)).id, id);
      });
    },
  },
  {
    name: "runs: replay returns a new run of the same task and payload",
    async run({ ctx }) {
      const p = await newProject(ctx);
      await as(ctx, p.prodKey, async () => {
        const { id } = await trigger(5);
        const replay = await runs.replay(id);
        expectRunId(replay.id);
        assert.notEqual(replay.id, id);
        const run = await runs.retrieve(replay.id);
        assert.equal(run.taskIdentifier, "compat-task");
        assert.deepEqual(run.payload, { n: 5 });
      });
    },
  },
  {
    name: "runs: replay with a JWT exchanged from a PAT, with the scopes the MCP server asks for",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const { id } = await as(ctx, p.prodKey, () => trigger(6));
      const scopes = [`read:runs:${id}`, `write:runs:${id}`, "trigger:tasks:compat-task"];
      const res = await http(ctx, "POST", `/api/v1/projects/${p.ref}/prod/jwt`, { token: p.pat, body: { claims: { scopes } } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const replay = await as(ctx, res.body.token, () => runs.replay(id));
      expectRunId(replay.id);
      assert.notEqual(replay.id, id);
      const run = await as(ctx, p.prodKey, () => runs.retrieve(replay.id));
      assert.deepEqual(run.payload, { n: 6 });
    },
  },
  {
    name: "batch: batchTrigger of 3 items creates 3 visible runs",
    async run({ ctx }) {
      const p = await newProject(ctx);
      await as(ctx, p.prodKey, async () => {
        const handle = await tasks.batchTrigger("compat-task", [1, 2, 3].map((n) => ({ payload: { n } })));
        assert.match(handle.batchId, /^batch_[A-Za-z0-9]+$/);
        assert.equal(handle.runCount, 3);
        const ids = [];
        for await (const run of runs.list({ batch: handle.batchId })) ids.push(run.id);
        assert.equal(ids.length, 3, `runs in batch: ${ids.join(",")}`);
        const payloads = [];
        for (const id of ids) {
          const run = await runs.retrieve(id);
          assert.equal(run.taskIdentifier, "compat-task");
          assert.equal(run.batchId, handle.batchId);
          payloads.push(run.payload.n);
        }
        assert.deepEqual(payloads.sort(), [1, 2, 3]);
        // batch.retrieve parses with the SDK's own schema.
        const batch = await sdkBatch.retrieve(handle.batchId);
        assert.equal(batch.id, handle.batchId);
        assert.equal(batch.runCount, 3);
        assert.equal(batch.status, "PENDING");
        assert.deepEqual([...batch.runs].sort(), [...ids].sort());
      });
    },
  },
];
