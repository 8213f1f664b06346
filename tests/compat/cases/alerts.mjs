// Alerts with the real clients: a channel made through upstream's alertChannels route, a task
// under the official `trigger.dev dev` 4.8.3 that fails for good, and the webhooks that reach
// a receiver here within seconds, each verified and parsed by the SDK's own
// `webhooks.constructEvent` with the channel's secret. (The server runs with
// --webhook-allow-private, as the receiver is on loopback.) It shares the waits' dev session.

import http from "node:http";
import { tasks, runs, webhooks } from "@trigger.dev/sdk";
import { as } from "../lib/api.mjs";
import { http as api } from "../lib/api.mjs";
import { assert, expectStatus } from "../lib/check.mjs";
import { sharedDev } from "../lib/dev.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A receiver on a loopback port collecting `{ headers, body }` of each request. */
async function receiver() {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(200).end("ok");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/alerts`, got, close: () => server.close() };
}

export default [
  {
    name: "alerts: a run that fails for good reaches a webhook the SDK verifies, with its new error group",
    timeout: 90_000,
    async run({ ctx, step }) {
      const s = await sharedDev(ctx, "waits");
      const hook = await receiver();
      try {
        const secret = "whsec_compat_alerts";
        const r = await api(ctx, "POST", `/api/v1/projects/${s.ref}/alertChannels`, {
          token: s.pat,
          body: {
            alertTypes: ["run_failure", "error_group"],
            name: "compat receiver",
            channel: "webhook",
            channelData: { url: hook.url, secret },
            environmentTypes: ["DEVELOPMENT"],
            deduplicationKey: "compat",
          },
        });
        expectStatus(r, 200);
        assert.match(r.body.id, /^alert_channel_/);
        const reason = `alerts ${Date.now()}`;
        const { id } = await as(ctx, s.devKey, () => tasks.trigger("compat-throws", { reason }, { maxAttempts: 1 }));
        step(`triggered ${id}; waiting for its alerts`);
        const deadline = Date.now() + 60_000;
        const events = [];
        while (Date.now() < deadline) {
          for (const { headers, body } of hook.got.splice(0)) {
            const header = headers["x-trigger-signature-hmacsha256"];
            const event = await webhooks.constructEvent({ payload: body, header }, secret);
            await assert.rejects(webhooks.constructEvent({ payload: body, header }, "not-the-secret"));
            events.push(event);
          }
          const failed = events.find((e) => e.type === "alert.run.failed" && e.object.run.id === id);
          const error = events.find((e) => e.type === "alert.error" && e.object.error.message.includes(reason));
          if (failed && error) {
            assert.equal(failed.object.task.id, "compat-throws");
            assert.equal(failed.object.run.status, "FAILED");
            assert.equal(failed.object.run.error.name, "TypeError");
            assert.equal(failed.object.environment.type, "DEVELOPMENT");
            assert.equal(failed.object.project.ref, s.ref);
            assert.equal(error.object.classification, "new_issue");
            assert.equal(error.object.error.taskIdentifier, "compat-throws");
            const run = await as(ctx, s.devKey, () => runs.retrieve(id));
            assert.equal(run.status, "FAILED");
            return;
          }
          await sleep(200);
        }
        throw new Error(`no verified alerts for ${id} within 60 s; got ${JSON.stringify(events.map((e) => e.type))}`);
      } finally {
        hook.close();
      }
    },
  },
];
