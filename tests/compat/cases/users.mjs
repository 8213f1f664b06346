// Users, PATs and the trigger.dev CLI (errors-runs-sdk §6, auth.md §5.3 and
// §5.8): whoami, mint-token, and exchanging a user-actor token for an
// environment JWT.

import { GetJWTResponse, WhoAmIResponseSchema } from "@trigger.dev/core/v3";
import { envClaims, http, newProject } from "../lib/api.mjs";
import { assert, decodeJwt, expectError, expectStatus } from "../lib/check.mjs";
import { cli, CLI_TIMEOUT_MS, describe, mint, UAT_RE } from "../lib/cli.mjs";

const exchange = (ctx, token, ref, body) =>
  http(ctx, "POST", `/api/v1/projects/${ref}/prod/jwt`, { token, body });

export default [
  {
    name: "users: GET /api/v2/whoami returns the PAT's user",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const res = await http(ctx, "GET", "/api/v2/whoami", { token: p.pat });
      expectStatus(res, 200);
      const me = WhoAmIResponseSchema.parse(res.body);
      assert.equal(me.userId, p.user.id);
      assert.equal(me.email, p.user.email);
      assert.equal(me.project, undefined);
    },
  },
  {
    name: "users: GET /api/v2/whoami refuses an env secret key with 401",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const res = await http(ctx, "GET", "/api/v2/whoami", { token: p.prodKey });
      expectError(res, 401, "Invalid or Missing Access Token");
    },
  },
  {
    name: "users: CLI whoami prints the profile user's email",
    timeout: CLI_TIMEOUT_MS + 5_000,
    async run({ ctx }) {
      const p = await newProject(ctx);
      const r = await cli(ctx, p.pat, ["whoami"]);
      assert.equal(r.code, 0, describe(r));
      // whoami exits 0 even when it fails, so the email is the real signal.
      assert.ok(r.stdout.includes(p.user.email), describe(r));
      assert.ok(r.stdout.includes(p.user.id), describe(r));
    },
  },
  {
    name: "users: CLI mint-token --ttl 3600 --cap read:runs prints a tr_uat_ token",
    timeout: CLI_TIMEOUT_MS + 5_000,
    async run({ ctx }) {
      const p = await newProject(ctx);
      const r = await mint(ctx, p.pat, "read:runs");
      assert.ok(r.stderr.includes("expires in 3600s"), describe(r));
      assert.ok(r.stderr.includes(`Minted token for ${p.user.email}`), describe(r));
      const { payload } = decodeJwt(r.token.slice("tr_uat_".length));
      assert.equal(payload.kind, "user_actor");
      assert.equal(payload.sub, p.user.id);
      assert.equal(payload.act?.client, "cli");
      assert.deepEqual(payload.cap, ["read:runs"]);
      assert.ok(Math.abs(payload.exp - payload.iat - 3600) <= 1, `exp - iat = ${payload.exp - payload.iat}`);
    },
  },
  {
    name: "users: a UAT capped read:runs,read:apiKeys exchanges for an env JWT",
    timeout: CLI_TIMEOUT_MS + 5_000,
    async run({ ctx }) {
      const p = await newProject(ctx);
      const { token } = await mint(ctx, p.pat, "read:runs,read:apiKeys");
      const res = await exchange(ctx, token, p.ref, { claims: { scopes: ["read:runs", "write:runs"] } });
      expectStatus(res, 200);
      const jwt = GetJWTResponse.parse(res.body).token;
      const { payload } = decodeJwt(jwt);
      assert.equal(payload.act?.sub, p.user.id);
      assert.equal(payload.act?.client, "cli");
      assert.deepEqual(payload.scopes, ["read:runs"]);
      assert.equal(payload.pub, true);
      assert.equal(payload.sub, (await envClaims(ctx, p.prodKey)).sub);
    },
  },
  {
    name: "users: a UAT capped only read:runs is refused at the exchange with 403",
    timeout: CLI_TIMEOUT_MS + 5_000,
    async run({ ctx }) {
      const p = await newProject(ctx);
      const { token } = await mint(ctx, p.pat, "read:runs");
      const res = await exchange(ctx, token, p.ref, { claims: { scopes: ["read:runs"] } });
      expectError(res, 403, "You don't have permission to access this environment's API keys.");
    },
  },
  {
    name: "users: the exchange with a PAT stamps act and passes scopes verbatim",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const res = await exchange(ctx, p.pat, p.ref, { claims: { scopes: ["read:runs", "write:runs"] } });
      expectStatus(res, 200);
      const { payload } = decodeJwt(GetJWTResponse.parse(res.body).token);
      assert.equal(payload.act.sub, p.user.id);
      assert.equal(payload.act.client, "personal-access-token");
      // taskgate's addition: the PAT id, so revoking the PAT ends this JWT too.
      assert.equal(typeof payload.act.pat, "string");
      assert.deepEqual(payload.scopes, ["read:runs", "write:runs"]);
    },
  },
  {
    name: "users: user-actor-token accepts a 30-day ttl and refuses one over 365 days",
    async run({ ctx }) {
      // taskgate's TTL ceiling defaults to 365 days (upstream's is 7 days).
      const p = await newProject(ctx);
      const ok = await http(ctx, "POST", "/api/v1/auth/user-actor-token", {
        token: p.pat,
        body: { ttlSeconds: 30 * 86400, client: "compat" },
      });
      expectStatus(ok, 200);
      assert.equal(ok.body.expiresInSeconds, 30 * 86400);
      const tooLong = await http(ctx, "POST", "/api/v1/auth/user-actor-token", {
        token: p.pat,
        body: { ttlSeconds: 366 * 86400 },
      });
      expectError(tooLong, 400, "Invalid request body");
    },
  },
  {
    name: "users: user-actor-token refuses a UAT as the bearer with 401",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const res = await http(ctx, "POST", "/api/v1/auth/user-actor-token", { token: p.pat, body: {} });
      expectStatus(res, 200);
      assert.equal(res.body.expiresInSeconds, 3600);
      const again = await http(ctx, "POST", "/api/v1/auth/user-actor-token", { token: res.body.token, body: {} });
      assert.equal(again.status, 401, again.text);
    },
  },
];
