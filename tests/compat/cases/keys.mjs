// Secret-key rotation (auth.md §1.8–§1.11): the old key keeps working for a
// grace window, the admin route can end that window, then the old key is
// refused with 401 "Invalid API key".

import { AuthenticationError, tasks } from "@trigger.dev/sdk";
import { TriggerTaskResponse } from "@trigger.dev/core/v3";
import { as, createUserWithPat, getEnv, http, newProject, rotateKey, setGrace } from "../lib/api.mjs";
import { assert, expectError, expectRunId, rejects } from "../lib/check.mjs";

const trigger = (ctx, key) => as(ctx, key, () => tasks.trigger("compat-task", { n: 1 }));
const DAY_MS = 24 * 60 * 60 * 1000;

/** A project whose prod key has been rotated once. */
async function rotated(ctx) {
  const p = await newProject(ctx);
  const rotation = await rotateKey(ctx, p.pat, p.ref);
  return { ...p, oldKey: p.prodKey, newKey: rotation.apiKey, rotation };
}

export default [
  {
    name: "keys: tasks.trigger with the prod key returns a run_ id",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const handle = await trigger(ctx, p.prodKey);
      expectRunId(handle.id);
      assert.equal(typeof handle.publicAccessToken, "string");
    },
  },
  {
    name: "keys: raw trigger response parses as TriggerTaskResponse",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const res = await http(ctx, "POST", "/api/v1/tasks/compat-task/trigger", {
        token: p.prodKey,
        body: { payload: '{"n":1}', options: { payloadType: "application/json" } },
      });
      assert.equal(res.status, 200, res.text);
      const body = TriggerTaskResponse.parse(res.body);
      expectRunId(body.id);
      assert.ok(body.isCached === undefined || body.isCached === false, `isCached is ${body.isCached}`);
    },
  },
  {
    name: "keys: rotation returns a new prod key and a 24h grace row",
    async run({ ctx }) {
      const { oldKey, newKey, rotation, pat, ref } = await rotated(ctx);
      assert.match(newKey, /^tr_prod_[A-Za-z0-9]+$/);
      assert.notEqual(newKey, oldKey);
      assert.equal(typeof rotation.revokedApiKey?.id, "string");
      const graceLeft = Date.parse(rotation.revokedApiKey.expiresAt) - Date.now();
      assert.ok(Math.abs(graceLeft - DAY_MS) < 5 * 60 * 1000, `grace ends in ${graceLeft} ms, expected ~24h`);
      assert.equal((await getEnv(ctx, pat, ref, "prod")).apiKey, newKey);
    },
  },
  {
    name: "keys: the old key still triggers inside the grace window",
    async run({ ctx }) {
      const { oldKey } = await rotated(ctx);
      expectRunId((await trigger(ctx, oldKey)).id);
    },
  },
  {
    name: "keys: the new key triggers after rotation",
    async run({ ctx }) {
      const { newKey } = await rotated(ctx);
      expectRunId((await trigger(ctx, newKey)).id);
    },
  },
  {
    name: "keys: ending the grace via the admin route refuses the old key",
    timeout: 30_000,
    async run({ ctx }) {
      const { oldKey, newKey, rotation } = await rotated(ctx);
      const ended = await setGrace(ctx, rotation.revokedApiKey.id, null);
      assert.equal(ended.success, true);
      assert.equal(ended.revokedApiKey.id, rotation.revokedApiKey.id);
      assert.equal(typeof ended.revokedApiKey.runtimeEnvironmentId, "string");
      assert.ok(Date.parse(ended.revokedApiKey.expiresAt) <= Date.now() + 1000, `expiresAt ${ended.revokedApiKey.expiresAt}`);
      await rejects(trigger(ctx, oldKey), { status: 401, message: "Invalid API key", type: AuthenticationError });
      expectRunId((await trigger(ctx, newKey)).id);
    },
  },
  {
    name: "keys: a future expiresAt from the admin route re-opens the grace",
    async run({ ctx }) {
      const { oldKey, rotation } = await rotated(ctx);
      await setGrace(ctx, rotation.revokedApiKey.id, Date.now() - 1000); // epoch ms, in the past
      await rejects(trigger(ctx, oldKey), { status: 401, message: "Invalid API key", type: AuthenticationError });
      const until = new Date(Date.now() + 60 * 60 * 1000).toISOString();
      const reopened = await setGrace(ctx, rotation.revokedApiKey.id, until);
      assert.equal(Date.parse(reopened.revokedApiKey.expiresAt), Date.parse(until));
      expectRunId((await trigger(ctx, oldKey)).id);
    },
  },
  {
    name: "keys: the revoked-key admin route refuses a non-admin PAT with 403",
    async run({ ctx }) {
      const { rotation } = await rotated(ctx);
      const { pat } = await createUserWithPat(ctx);
      const res = await http(ctx, "POST", `/admin/api/v1/revoked-api-keys/${rotation.revokedApiKey.id}`, {
        token: pat,
        body: { expiresAt: null },
      });
      expectError(res, 403, "You must be an admin to perform this action");
    },
  },
  {
    name: "keys: regenerate-api-key refuses an env secret key with 401",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const res = await http(ctx, "POST", `/api/v1/projects/${p.ref}/prod/regenerate-api-key`, { token: p.prodKey });
      expectError(res, 401, "Invalid or Missing Access Token");
    },
  },
];
