// Public access tokens (auth.md §3.4–§3.8, errors-runs-sdk §5.3): tokens the
// SDK signs locally with the secret key, server-minted tokens, and one-time
// trigger tokens.

import {
  AuthenticationError,
  PermissionDeniedError,
  UnprocessableEntityError,
  auth,
  runs,
  tasks,
} from "@trigger.dev/sdk";
import { as, envClaims, http, newProject, rotateKey, setGrace } from "../lib/api.mjs";
import { assert, decodeJwt, expectError, expectRunId, expectStatus, rejects } from "../lib/check.mjs";

const ISS = "https://id.trigger.dev";
const AUD = "https://api.trigger.dev";

/** A project with two runs and a token that may read only the first. */
async function tokenForRunA(ctx) {
  const p = await newProject(ctx);
  const [runA, runB] = await as(ctx, p.prodKey, async () => [
    (await tasks.trigger("compat-task", { n: 1 })).id,
    (await tasks.trigger("compat-task", { n: 2 })).id,
  ]);
  const token = await as(ctx, p.prodKey, () => auth.createPublicToken({ scopes: { read: { runs: [runA] } } }));
  return { ...p, runA, runB, token };
}

const retrieve = (ctx, token, id) => as(ctx, token, () => runs.retrieve(id));

export default [
  {
    name: "tokens: createPublicToken signs a JWT for the env the claims route names",
    async run({ ctx }) {
      const { token, runA, prodKey } = await tokenForRunA(ctx);
      const claims = await envClaims(ctx, prodKey);
      assert.equal(claims.pub, true);
      assert.equal(typeof claims.sub, "string");
      const { header, payload } = decodeJwt(token);
      assert.deepEqual(header, { alg: "HS256" });
      assert.equal(payload.sub, claims.sub);
      assert.deepEqual(payload.scopes, [`read:runs:${runA}`]);
      assert.equal(payload.iss, ISS);
      assert.equal(payload.aud, AUD);
    },
  },
  {
    name: "tokens: a public token scoped to run A retrieves run A",
    async run({ ctx }) {
      const { token, runA } = await tokenForRunA(ctx);
      const run = await retrieve(ctx, token, runA);
      assert.equal(run.id, runA);
      assert.equal(run.taskIdentifier, "compat-task");
    },
  },
  {
    name: "tokens: a public token scoped to run A is refused run B with 403",
    timeout: 30_000,
    async run({ ctx }) {
      const { token, runB } = await tokenForRunA(ctx);
      await rejects(retrieve(ctx, token, runB), { status: 403, type: PermissionDeniedError });
      const res = await http(ctx, "GET", `/api/v3/runs/${runB}`, { token });
      expectError(res, 403, "Unauthorized");
    },
  },
  {
    name: "tokens: a public token survives a key rotation inside the grace window",
    async run({ ctx }) {
      const { token, runA, pat, ref } = await tokenForRunA(ctx);
      await rotateKey(ctx, pat, ref);
      assert.equal((await retrieve(ctx, token, runA)).id, runA);
    },
  },
  {
    name: "tokens: a public token is refused with 401 once the grace has ended",
    timeout: 30_000,
    async run({ ctx }) {
      const { token, runA, pat, ref } = await tokenForRunA(ctx);
      const rotation = await rotateKey(ctx, pat, ref);
      await setGrace(ctx, rotation.revokedApiKey.id, null);
      await rejects(retrieve(ctx, token, runA), { status: 401, type: AuthenticationError });
      const res = await http(ctx, "GET", `/api/v3/runs/${runA}`, { token });
      expectError(res, 401, "Public Access Token is invalid");
    },
  },
  {
    name: "tokens: a public token signed with the new key works after rotation",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const runA = (await as(ctx, p.prodKey, () => tasks.trigger("compat-task", { n: 1 }))).id;
      const { apiKey } = await rotateKey(ctx, p.pat, p.ref);
      const token = await as(ctx, apiKey, () => auth.createPublicToken({ scopes: { read: { runs: true } } }));
      assert.deepEqual(decodeJwt(token).payload.scopes, ["read:runs"]);
      assert.equal((await retrieve(ctx, token, runA)).id, runA);
    },
  },
  {
    name: "tokens: the handle's publicAccessToken reads its own run",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const handle = await as(ctx, p.prodKey, () => tasks.trigger("compat-task", { n: 1 }));
      const { payload } = decodeJwt(handle.publicAccessToken);
      assert.ok(payload.scopes?.includes(`read:runs:${handle.id}`), `scopes: ${JSON.stringify(payload.scopes)}`);
      assert.equal(payload.sub, (await envClaims(ctx, p.prodKey)).sub);
      assert.equal((await retrieve(ctx, handle.publicAccessToken, handle.id)).id, handle.id);
    },
  },
  {
    name: "tokens: a one-time trigger token triggers once, then 422",
    timeout: 30_000,
    async run({ ctx }) {
      const p = await newProject(ctx);
      const token = await as(ctx, p.prodKey, () => auth.createTriggerPublicToken("compat-task"));
      const { payload } = decodeJwt(token);
      assert.equal(payload.otu, true);
      assert.deepEqual(payload.scopes, ["trigger:tasks:compat-task"]);
      const trigger = () => as(ctx, token, () => tasks.trigger("compat-task", { n: 1 }));
      expectRunId((await trigger()).id);
      await rejects(trigger(), {
        status: 422,
        type: UnprocessableEntityError,
        message: "Cannot trigger compat-task with a one-time use token as it has already been used.",
      });
    },
  },
  {
    name: "tokens: a trigger token for another task is refused with 403",
    timeout: 30_000,
    async run({ ctx }) {
      const p = await newProject(ctx);
      const token = await as(ctx, p.prodKey, () => auth.createTriggerPublicToken("other-task"));
      await rejects(
        as(ctx, token, () => tasks.trigger("compat-task", { n: 1 })),
        { status: 403, type: PermissionDeniedError },
      );
    },
  },
  {
    name: "tokens: a token from POST /api/v1/auth/public-tokens works with the SDK",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const runA = (await as(ctx, p.prodKey, () => tasks.trigger("compat-task", { n: 1 }))).id;
      const res = await http(ctx, "POST", "/api/v1/auth/public-tokens", {
        token: p.prodKey,
        body: { scopes: [`read:runs:${runA}`], expirationTime: "1h" },
      });
      expectStatus(res, 200);
      const { payload } = decodeJwt(res.body.token);
      assert.equal(payload.pub, true);
      assert.equal(payload.sub, (await envClaims(ctx, p.prodKey)).sub);
      assert.deepEqual(payload.scopes, [`read:runs:${runA}`]);
      assert.equal(payload.otu, undefined);
      assert.ok(Math.abs(payload.exp - payload.iat - 3600) <= 1, `exp - iat = ${payload.exp - payload.iat}`);
      assert.equal((await retrieve(ctx, res.body.token, runA)).id, runA);
    },
  },
  {
    name: "tokens: public-tokens rejects a lifetime over 30 days with 400",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const res = await http(ctx, "POST", "/api/v1/auth/public-tokens", {
        token: p.prodKey,
        body: { scopes: ["read:runs"], expirationTime: "31d" },
      });
      expectError(res, 400, "Expiration time cannot exceed 30 days");
    },
  },
  {
    name: "tokens: a token without a scopes claim is denied (403)",
    timeout: 30_000,
    async run({ ctx }) {
      const p = await newProject(ctx);
      const runA = (await as(ctx, p.prodKey, () => tasks.trigger("compat-task", { n: 1 }))).id;
      const token = await as(ctx, p.prodKey, () => auth.createPublicToken());
      assert.equal(decodeJwt(token).payload.scopes, undefined);
      await rejects(retrieve(ctx, token, runA), { status: 403, type: PermissionDeniedError });
    },
  },
];
