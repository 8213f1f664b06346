// The CLI's `env` commands (4.8.3), which read and write an environment's variables with the
// environment's secret key after looking it up with the user's token.

import { newProject } from "../lib/api.mjs";
import { assert } from "../lib/check.mjs";
import { cli, CLI_TIMEOUT_MS, describe, TASK_PROJECT } from "../lib/cli.mjs";

export default [
  {
    name: "envvars: CLI env set, get and list read and write an environment's variables",
    timeout: 4 * CLI_TIMEOUT_MS,
    async run({ ctx, step }) {
      const p = await newProject(ctx);
      // Run in the suite's task project: the CLI reads a trigger.config.ts even when told the
      // project.
      const env = (...args) => cli(ctx, p.pat, ["env", ...args, "-p", p.ref, "-e", "prod"], { cwd: TASK_PROJECT });
      step("env set");
      const set = await env("set", "COMPAT_COLOR", "teal");
      assert.equal(set.code, 0, describe(set));
      const secret = await env("set", "COMPAT_TOKEN", "s3cret", "--secret");
      assert.equal(secret.code, 0, describe(secret));
      step("env get");
      const got = await env("get", "COMPAT_COLOR", "--raw");
      assert.equal(got.code, 0, describe(got));
      assert.equal(got.stdout.trim(), "teal", describe(got));
      // A secret is write-only: the CLI reads it back as redacted, never as its value.
      const hidden = await env("get", "COMPAT_TOKEN", "--raw");
      assert.equal(hidden.code, 0, describe(hidden));
      assert.equal(hidden.stdout.trim(), "<redacted>", describe(hidden));
      step("env list");
      const list = await env("list");
      assert.equal(list.code, 0, describe(list));
      assert.match(list.stdout, /COMPAT_COLOR/, describe(list));
      assert.match(list.stdout, /COMPAT_TOKEN/, describe(list));
      assert.doesNotMatch(list.stdout, /s3cret/, "secret values are not listed");
    },
  },
];
