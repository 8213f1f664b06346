// Realtime streams (errors-runs-sdk §4.2, §4.3). Outside a task the SDK can
// only read output streams and send to input streams; the writing side is
// done with core's ApiClient.appendToStream, the call a task's
// `streams.append` makes.

import { BadRequestError, NotFoundError, auth, runs, streams, tasks } from "@trigger.dev/sdk";
import { ApiClient } from "@trigger.dev/core/v3";
import { as, http, newProject } from "../lib/api.mjs";
import { assert, expectError, expectStatus, rejects } from "../lib/check.mjs";

const STREAM = "compat-out";

/** A run with two JSON chunks appended to its `compat-out` stream. */
async function runWithChunks(ctx) {
  const p = await newProject(ctx);
  const handle = await as(ctx, p.prodKey, () => tasks.trigger("compat-task", { n: 1 }));
  const writer = new ApiClient(ctx.url, p.prodKey);
  for (const i of [1, 2]) {
    const res = await writer.appendToStream(handle.id, "self", STREAM, JSON.stringify({ i }));
    assert.equal(res.ok, true, `append ${i}: ${JSON.stringify(res)}`);
  }
  return { ...p, handle };
}

/** Read `count` chunks from a run's stream, then stop. */
async function readChunks(ctx, token, runId, count, signal) {
  return as(ctx, token, async () => {
    const chunks = [];
    const stream = await streams.read(runId, STREAM, { timeoutInSeconds: 10, signal });
    for await (const chunk of stream) {
      chunks.push(chunk);
      if (chunks.length === count) break;
    }
    return chunks;
  });
}

const input = streams.input({ id: "compat-input" });

export default [
  {
    name: "streams: streams.read yields the chunks appended to a run's stream",
    timeout: 30_000,
    async run({ ctx, signal, step }) {
      const { prodKey, handle } = await runWithChunks(ctx);
      step("reading compat-out with the secret key");
      assert.deepEqual(await readChunks(ctx, prodKey, handle.id, 2, signal), [{ i: 1 }, { i: 2 }]);
    },
  },
  {
    name: "streams: the handle's publicAccessToken reads its run's stream",
    timeout: 30_000,
    async run({ ctx, signal, step }) {
      const { handle } = await runWithChunks(ctx);
      step("reading compat-out with handle.publicAccessToken");
      assert.deepEqual(await readChunks(ctx, handle.publicAccessToken, handle.id, 2, signal), [{ i: 1 }, { i: 2 }]);
    },
  },
  {
    name: "streams: a token for another run cannot read the stream (403)",
    async run({ ctx }) {
      const { prodKey, handle } = await runWithChunks(ctx);
      const other = await as(ctx, prodKey, () => tasks.trigger("compat-task", { n: 2 }));
      const token = await as(ctx, prodKey, () => auth.createPublicToken({ scopes: { read: { runs: [other.id] } } }));
      const res = await http(ctx, "GET", `/realtime/v1/streams/${handle.id}/${STREAM}`, {
        token,
        headers: { accept: "text/event-stream", "timeout-seconds": "1" },
      });
      expectError(res, 403, "Unauthorized");
    },
  },
  {
    name: "streams: input stream send with the handle's token answers ok",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const handle = await as(ctx, p.prodKey, () => tasks.trigger("compat-task", { n: 1 }));
      await as(ctx, handle.publicAccessToken, () => input.send(handle.id, { approved: true }));
      const res = await http(ctx, "POST", `/realtime/v1/streams/${handle.id}/input/compat-input`, {
        token: handle.publicAccessToken,
        body: { data: { approved: false } },
      });
      expectStatus(res, 200);
      assert.deepEqual(res.body, { ok: true });
    },
  },
  {
    name: "streams: input stream send to a canceled run is refused with 400",
    timeout: 30_000,
    async run({ ctx }) {
      const p = await newProject(ctx);
      await as(ctx, p.prodKey, async () => {
        const { id } = await tasks.trigger("compat-task", { n: 1 });
        await runs.cancel(id);
        await rejects(input.send(id, { late: true }), {
          status: 400,
          type: BadRequestError,
          message: "Cannot send to input stream on a completed run",
        });
      });
    },
  },
  {
    name: "streams: input stream send to an unknown run is 404 Run not found",
    timeout: 30_000,
    async run({ ctx }) {
      const p = await newProject(ctx);
      await as(ctx, p.prodKey, () =>
        rejects(input.send("run_doesnotexist0000000000", { x: 1 }), {
          status: 404,
          type: NotFoundError,
          message: "Run not found",
        }),
      );
    },
  },
];
