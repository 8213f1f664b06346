// API rate limits: an organization's token bucket (set over the admin API), upstream's
// headers and 429 body, and the official SDK waiting out a 429 until `x-ratelimit-reset`.

import { tasks } from "@trigger.dev/sdk";
import { http, as, createOrg, createProject, createUserWithPat, getEnv } from "../lib/api.mjs";
import { assert, expectRunId, expectStatus } from "../lib/check.mjs";

/**
 * A project in an organization of its own (never the suite's shared one, which later cases
 * use) that may make `maxTokens` requests at once, regaining `refillRate` a second.
 */
async function limited(ctx, refillRate, maxTokens) {
  const { pat } = await createUserWithPat(ctx);
  const org = await createOrg(ctx, pat);
  const project = await createProject(ctx, pat, org);
  const prod = await getEnv(ctx, pat, project.externalRef, "prod");
  const p = { org, project, prodKey: prod.apiKey };
  const res = await http(ctx, "PUT", `/admin/api/v1/orgs/${p.org.id}/rate-limit`, {
    token: ctx.adminToken,
    body: { type: "tokenBucket", refillRate, interval: "1s", maxTokens },
  });
  expectStatus(res, 200);
  assert.equal(res.body.source, "organization");
  return p;
}

export default [
  {
    name: "rate limits: an empty bucket answers upstream's 429 with its headers",
    async run({ ctx }) {
      const p = await limited(ctx, 1, 2);
      const list = () => http(ctx, "GET", "/api/v1/runs", { token: p.prodKey });
      const first = await list();
      expectStatus(first, 200);
      assert.equal(first.headers.get("x-ratelimit-limit"), "2");
      assert.equal(first.headers.get("x-ratelimit-remaining"), "1");
      await list();
      const refused = await list();
      expectStatus(refused, 429);
      assert.equal(refused.headers.get("content-type"), "application/problem+json");
      assert.equal(refused.headers.get("x-ratelimit-remaining"), "0");
      const reset = Number(refused.headers.get("x-ratelimit-reset"));
      assert.ok(reset > Date.now() - 1000 && reset <= Date.now() + 1000, `reset ${reset} is not within a second`);
      assert.equal(refused.body.title, "Rate Limit Exceeded");
      assert.equal(refused.body.status, 429);
      assert.equal(refused.body.limit, 2);
      assert.equal(refused.body.reset, reset);
      assert.match(refused.body.error, /^Rate limit exceeded 0\/2 requests remaining\. Retry in [\d.]+ seconds\.$/);
    },
  },
  {
    name: "rate limits: the SDK waits for x-ratelimit-reset and its triggers all succeed",
    timeout: 60_000,
    async run({ ctx }) {
      const p = await limited(ctx, 1, 2);
      const started = Date.now();
      const ids = await as(ctx, p.prodKey, async () => {
        const out = [];
        for (let i = 0; i < 4; i++) out.push((await tasks.trigger("compat-task", { n: i })).id);
        return out;
      });
      ids.forEach(expectRunId);
      assert.equal(new Set(ids).size, 4);
      // Two at once, then one a second: the SDK must have waited for at least one refill.
      assert.ok(Date.now() - started >= 900, `four triggers took ${Date.now() - started} ms`);
    },
  },
];
