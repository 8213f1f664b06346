// Payloads and outputs over 128 KiB, which the SDK offloads through taskgate's signed packet
// URLs, with the official `trigger.dev dev` 4.8.3 as the worker: a 2 MB payload in a trigger
// and in a batch reaches its task whole, and runs.retrieve reads it back; a 1 MB output
// reaches runs.retrieve and a parent waiting with triggerAndWait. They share the waits
// cases' dev session.

import { createHash, randomBytes } from "node:crypto";
import { runs, tasks } from "@trigger.dev/sdk";
import { RetrieveRunResponse } from "@trigger.dev/core/v3";
import { as, http } from "../lib/api.mjs";
import { assert, expectStatus } from "../lib/check.mjs";
import { sharedDev } from "../lib/dev.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const digest = (s) => createHash("sha256").update(s).digest("hex");
/** `n` characters that do not compress into anything shorter by accident. */
const blob = (n) => randomBytes(Math.ceil(n / 2)).toString("hex").slice(0, n);

/** The dev session the waits cases use (cases/waits.mjs), started by whichever runs first. */
const devSession = (ctx) => sharedDev(ctx, "waits");

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

export default [
  {
    name: "packets: a 2 MB payload is offloaded by the SDK, reaches its task whole and reads back",
    timeout: 90_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const data = blob(2_000_000);
      const at = new Date("2026-01-02T03:04:05.000Z");
      const { id } = await as(ctx, s.devKey, () => tasks.trigger("packet-echo", { blob: data, at }));
      const run = await finished(ctx, s.devKey, id);
      assert.equal(run.status, "COMPLETED", JSON.stringify(run.error));
      assert.deepEqual(run.output, { length: data.length, sha256: digest(data), atIsDate: true });
      // The stored run points at the packet; the SDK reads it through payloadPresignedUrl.
      const raw = await http(ctx, "GET", `/api/v3/runs/${id}`, { token: s.devKey });
      expectStatus(raw, 200);
      RetrieveRunResponse.parse(raw.body);
      assert.equal(raw.body.payload, undefined);
      assert.match(raw.body.payloadPresignedUrl, /\/packets\/v1\//);
      assert.equal(run.payload.blob, data);
      assert.equal(run.payload.at.getTime(), at.getTime(), "SuperJSON types survive the round trip");
    },
  },
  {
    name: "packets: a batch of 2 MB payloads reaches each task whole",
    timeout: 90_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const items = [blob(2_000_000), blob(2_100_000)];
      const handle = await as(ctx, s.devKey, () =>
        tasks.batchTrigger("packet-echo", items.map((b) => ({ payload: { blob: b } }))),
      );
      assert.equal(handle.runCount, 2);
      const ids = [];
      await as(ctx, s.devKey, async () => {
        for await (const run of runs.list({ batch: handle.batchId })) ids.push(run.id);
      });
      const done = await Promise.all(ids.map((id) => finished(ctx, s.devKey, id)));
      for (const run of done) assert.equal(run.status, "COMPLETED", JSON.stringify(run.error));
      assert.deepEqual(
        done.map((r) => r.output.sha256).sort(),
        items.map(digest).sort(),
      );
    },
  },
  {
    name: "packets: a 1 MB output reaches runs.retrieve and a parent waiting on triggerAndWait",
    timeout: 90_000,
    async run({ ctx }) {
      const s = await devSession(ctx);
      const payload = { size: 1_000_000, seed: blob(97) };
      const expected = payload.seed.repeat(Math.ceil(payload.size / payload.seed.length)).slice(0, payload.size);
      const { id } = await as(ctx, s.devKey, () => tasks.trigger("packet-parent", payload));
      const parent = await finished(ctx, s.devKey, id);
      assert.equal(parent.status, "COMPLETED", JSON.stringify(parent.error));
      assert.deepEqual(parent.output, { length: expected.length, sha256: digest(expected) });
      const child = await as(ctx, s.devKey, async () => {
        for await (const run of runs.list({ taskIdentifier: "packet-big-output" })) return run.id;
      });
      const raw = await http(ctx, "GET", `/api/v3/runs/${child}`, { token: s.devKey });
      expectStatus(raw, 200);
      assert.match(raw.body.outputPresignedUrl, /\/packets\/v1\//);
      const run = await finished(ctx, s.devKey, child);
      assert.equal(run.output.blob, expected);
    },
  },
];
