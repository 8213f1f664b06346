// `trigger.dev login` (the official CLI) against taskgate's dashboard: the CLI asks for an
// authorization code, a signed-in user approves it on the consent page, and the CLI finishes
// with the approval code the page shows, ending with a working profile.

import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CreateAuthorizationCodeResponseSchema, GetPersonalAccessTokenResponseSchema } from "@trigger.dev/core/v3";
import { createUser, http } from "../lib/api.mjs";
import { assert, expectStatus } from "../lib/check.mjs";
import { CLI_TIMEOUT_MS, cliIn, describe } from "../lib/cli.mjs";
import { csrfOf, signIn } from "../lib/dashboard.mjs";

export default [
  {
    name: "login: the authorization-code and token answers parse with the official schemas",
    async run({ ctx }) {
      const res = await http(ctx, "POST", "/api/v1/authorization-code", {
        body: { codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", codeChallengeMethod: "S256" },
      });
      expectStatus(res, 200);
      const code = CreateAuthorizationCodeResponseSchema.parse(res.body);
      assert.equal(code.approval, "paste");
      assert.ok(code.url.startsWith(`${ctx.url}/account/authorization-code/`), code.url);
      const pending = await http(ctx, "POST", "/api/v1/token", { body: { authorizationCode: code.authorizationCode } });
      expectStatus(pending, 200);
      assert.equal(GetPersonalAccessTokenResponseSchema.parse(pending.body).token, null);
    },
  },
  {
    name: "login: trigger.dev login --no-browser, approved on the consent page, finishes with --code",
    timeout: 3 * CLI_TIMEOUT_MS,
    async run({ ctx }) {
      const user = await createUser(ctx);
      const home = await mkdtemp(path.join(os.tmpdir(), "taskgate-compat-login-"));
      try {
        const start = await cliIn(home, ["login", "--no-browser", "-a", ctx.url]);
        assert.equal(start.code, 0, describe(start));
        const out = start.stdout + start.stderr;
        const url = out.match(/http:\/\/127\.0\.0\.1:\d+\/account\/authorization-code\/[A-Za-z0-9]{64}/)?.[0];
        assert.ok(url, describe(start));
        assert.ok(out.includes("trigger.dev login --code"), describe(start));

        const browser = await signIn(ctx, user.email);
        const consent = await browser.get(new URL(url).pathname);
        assert.equal(consent.status, 200, consent.text);
        assert.ok(consent.text.includes(user.email));
        const approved = await browser.post(new URL(url).pathname, { _csrf: csrfOf(consent.text) });
        assert.equal(approved.status, 200, approved.text);
        const approval = approved.text.match(/id="approval-code">([A-Z0-9-]{14})</)?.[1];
        assert.ok(approval, approved.text);

        const finish = await cliIn(home, ["login", "--code", approval]);
        assert.equal(finish.code, 0, describe(finish));
        assert.ok((finish.stdout + finish.stderr).includes("Logged in successfully"), describe(finish));
        const who = await cliIn(home, ["whoami"]);
        assert.equal(who.code, 0, describe(who));
        assert.ok((who.stdout + who.stderr).includes(user.email), describe(who));

        const config = JSON.parse(await readFile(path.join(home, "xdg/trigger/config.json"), "utf8"));
        const profile = config.profiles[config.currentProfile];
        assert.equal(profile.apiUrl, ctx.url);
        assert.match(profile.accessToken, /^tr_pat_/);
        const tokens = await http(ctx, "GET", "/api/v1/personal-access-tokens", { token: profile.accessToken });
        expectStatus(tokens, 200);
        assert.ok(JSON.stringify(tokens.body).includes('"cli"'), JSON.stringify(tokens.body));
      } finally {
        await rm(home, { recursive: true, force: true });
      }
    },
  },
];
