// Alerts with the real clients: a channel made through upstream's alertChannels route, a task
// under the official `trigger.dev dev` 4.8.3 that fails for good, and the webhooks that reach
// a receiver here within seconds, each verified and parsed by the SDK's own
// `webhooks.constructEvent` with the channel's secret: the run's failure and its error group
// as new, then (resolved, failing again) as a regression, then (ignored until one more
// occurrence) as unignored. The server runs with --webhook-allow-private, as the receiver is
// on loopback. It shares the waits' dev session.

import http from "node:http";
import { tasks, runs, webhooks } from "@trigger.dev/sdk";
import { as } from "../lib/api.mjs";
import { http as api } from "../lib/api.mjs";
import { assert, expectStatus } from "../lib/check.mjs";
import { sharedDev } from "../lib/dev.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A receiver on a loopback port collecting `{ headers, body, at }` of each request. */
async function receiver() {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now() });
      res.writeHead(200).end("ok");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/alerts`, got, close: () => server.close() };
}

export default [
  {
    name: "alerts: failed runs reach a webhook the SDK verifies: run failed, new issue, regression, unignored",
    timeout: 150_000,
    async run({ ctx, step }) {
      const s = await sharedDev(ctx, "waits");
      const hook = await receiver();
      const secret = "whsec_compat_alerts";
      const seen = [];
      /** Verified events until `want` finds one, within 30 s. */
      const next = async (want, what) => {
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
          for (const { headers, body, at } of hook.got.splice(0)) {
            const header = headers["x-trigger-signature-hmacsha256"];
            const event = await webhooks.constructEvent({ payload: body, header }, secret);
            await assert.rejects(webhooks.constructEvent({ payload: body, header }, "not-the-secret"));
            assert.equal(headers["x-taskgate-delivery-id"], event.id);
            seen.push({ event, at });
          }
          const found = seen.find(({ event }) => want(event));
          if (found) return found;
          await sleep(100);
        }
        throw new Error(`no verified ${what} within 30 s; got ${JSON.stringify(seen.map((e) => e.event.type))}`);
      };
      /** Triggers compat-throws once (no retry) and waits for it to fail. */
      const fail = async (reason) => {
        const { id } = await as(ctx, s.devKey, () => tasks.trigger("compat-throws", { reason }, { maxAttempts: 1 }));
        for (;;) {
          const run = await as(ctx, s.devKey, () => runs.retrieve(id));
          if (run.isCompleted) {
            assert.equal(run.status, "FAILED");
            return run;
          }
          await sleep(100);
        }
      };
      try {
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
        const run = await fail(reason);
        step(`${run.id} failed; waiting for its alerts`);
        const failed = await next((e) => e.type === "alert.run.failed" && e.object.run.id === run.id, "alert.run.failed");
        const o = failed.event.object;
        assert.equal(o.task.id, "compat-throws");
        assert.equal(o.run.status, "FAILED");
        assert.equal(o.run.error.name, "TypeError");
        assert.equal(o.environment.type, "DEVELOPMENT");
        assert.equal(o.project.ref, s.ref);
        const finished = new Date(run.finishedAt ?? run.updatedAt).getTime();
        assert.ok(failed.at - finished < 5_000, `the alert came ${failed.at - finished} ms after the run finished`);
        const isOurs = (e, classification) =>
          e.type === "alert.error" && e.object.classification === classification && e.object.error.message.includes(reason);
        const issue = await next((e) => isOurs(e, "new_issue"), "new_issue");
        assert.equal(issue.event.object.error.taskIdentifier, "compat-throws");
        const fingerprint = issue.event.object.error.fingerprint;

        step("resolving the group, then failing again");
        expectStatus(await api(ctx, "POST", `/api/v1/errors/${fingerprint}/resolve`, { token: s.devKey, body: {} }), 200);
        await fail(reason);
        const regression = await next((e) => isOurs(e, "regression"), "regression");
        assert.equal(regression.event.object.error.fingerprint, fingerprint);
        assert.ok(regression.event.object.error.occurrenceCount >= 2);

        step("ignoring it until one more occurrence, then failing again");
        expectStatus(
          await api(ctx, "POST", `/api/v1/errors/${fingerprint}/ignore`, { token: s.devKey, body: { totalOccurrences: 1 } }),
          200,
        );
        await fail(reason);
        await next((e) => isOurs(e, "unignored"), "unignored");
      } finally {
        hook.close();
      }
    },
  },
];
