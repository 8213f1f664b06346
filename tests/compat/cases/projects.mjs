// Projects as the CLI and the MCP server read them: every project of the caller's
// organizations, one project by ref, the production runtimes `projects list` shows, and
// archiving a preview branch with `preview archive`.

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  ApiBranchListResponseBody,
  GetProjectResponseBody,
  GetProjectRuntimesResponseBody,
  GetProjectsResponseBody,
} from "@trigger.dev/core/v3";
import { createUserWithPat, http, newProject } from "../lib/api.mjs";
import { assert, expectError, expectStatus } from "../lib/check.mjs";
import { cli, CLI_TIMEOUT_MS, describe, TASK_PROJECT } from "../lib/cli.mjs";

export default [
  {
    name: "projects: GET /api/v1/projects lists the caller's projects, not others'",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const res = await http(ctx, "GET", "/api/v1/projects", { token: p.pat });
      expectStatus(res, 200);
      const projects = GetProjectsResponseBody.parse(res.body);
      const mine = projects.find((x) => x.externalRef === p.ref);
      assert.ok(mine, JSON.stringify(res.body));
      assert.equal(mine.organization.id, p.org.id);
      const stranger = await createUserWithPat(ctx);
      const theirs = await http(ctx, "GET", "/api/v1/projects", { token: stranger.pat });
      expectStatus(theirs, 200);
      assert.deepEqual(theirs.body, []);
    },
  },
  {
    name: "projects: GET /api/v1/projects/{ref} answers a member and 404s anyone else",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const res = await http(ctx, "GET", `/api/v1/projects/${p.ref}`, { token: p.pat });
      expectStatus(res, 200);
      const project = GetProjectResponseBody.parse(res.body);
      assert.equal(project.externalRef, p.ref);
      assert.equal(project.name, p.project.name);
      const stranger = await createUserWithPat(ctx);
      expectError(await http(ctx, "GET", `/api/v1/projects/${p.ref}`, { token: stranger.pat }), 404, "Project not found");
    },
  },
  {
    name: "projects: GET /api/v1/projects/runtimes lists production environments, none deployed",
    async run({ ctx }) {
      const p = await newProject(ctx);
      const res = await http(ctx, "GET", "/api/v1/projects/runtimes", { token: p.pat });
      expectStatus(res, 200);
      const runtimes = GetProjectRuntimesResponseBody.parse(res.body);
      const mine = runtimes.find((r) => r.project.externalRef === p.ref);
      assert.ok(mine, JSON.stringify(res.body));
      assert.equal(mine.environment.slug, "prod");
      assert.equal(mine.deployment, null);
    },
  },
  {
    name: "projects: CLI projects list shows the project as not deployed",
    timeout: CLI_TIMEOUT_MS + 5_000,
    async run({ ctx }) {
      const p = await newProject(ctx);
      const r = await cli(ctx, p.pat, ["projects", "list"]);
      assert.equal(r.code, 0, describe(r));
      const line = (r.stdout + r.stderr).split("\n").find((l) => l.includes(p.ref));
      assert.ok(line, describe(r));
      assert.ok(line.includes("Not deployed"), describe(r));
    },
  },
  {
    name: "projects: CLI projects get prints the project's details",
    timeout: CLI_TIMEOUT_MS + 5_000,
    async run({ ctx }) {
      const p = await newProject(ctx);
      const r = await cli(ctx, p.pat, ["projects", "get", p.ref]);
      assert.equal(r.code, 0, describe(r));
      const out = r.stdout + r.stderr;
      assert.ok(out.includes(`Ref:     ${p.ref}`), describe(r));
      assert.ok(out.includes(`Name:    ${p.project.name}`), describe(r));
    },
  },
  {
    name: "projects: CLI preview archive archives a preview branch, and fails on one that is gone",
    timeout: 2 * CLI_TIMEOUT_MS + 5_000,
    async run({ ctx }) {
      const p = await newProject(ctx);
      const branches = `/api/v1/projects/${p.ref}/branches`;
      expectStatus(await http(ctx, "POST", branches, { token: p.pat, body: { env: "preview", branch: "feat/cli" } }), 200);
      // The CLI reads a trigger.config.ts even when told the project: the suite's task project's.
      const args = ["preview", "archive", TASK_PROJECT, "--branch", "feat/cli", "-p", p.ref, "--skip-update-check"];
      const r = await cli(ctx, p.pat, args);
      assert.equal(r.code, 0, describe(r));
      assert.match(r.stdout + r.stderr, /Successfully archived "feat\/cli"/, describe(r));
      const list = await http(ctx, "GET", branches, { token: p.pat });
      expectStatus(list, 200);
      assert.deepEqual(ApiBranchListResponseBody.parse(list.body).branches, []);
      const again = await cli(ctx, p.pat, args);
      assert.match(again.stdout + again.stderr, /Failed to archive "feat\/cli"/, describe(again));
    },
  },
  {
    // init fetches its config template from GitHub; where that is out of reach (as on the
    // suite's CI machine) it stops there, after everything it asks taskgate has succeeded.
    name: "projects: CLI init -p --yes finds the project and configures it",
    timeout: CLI_TIMEOUT_MS + 5_000,
    async run({ ctx }) {
      const p = await newProject(ctx);
      const dir = await mkdtemp(path.join(os.tmpdir(), "taskgate-compat-init-"));
      try {
        await writeFile(path.join(dir, "package.json"), JSON.stringify({ name: "init-compat", type: "module" }));
        const r = await cli(ctx, p.pat, ["init", "-p", p.ref, "--yes", "--skip-package-install"], { cwd: dir });
        assert.ok(r.stdout.includes(`Configuring project "${p.project.name}" (${p.ref})`), describe(r));
        if (r.code === 0) {
          const config = await readFile(path.join(dir, "trigger.config.ts"), "utf8");
          assert.match(config, new RegExp(`project: "${p.ref}"`), config);
        } else {
          assert.match(r.stdout, /Failed to create config file: fetch failed/, describe(r));
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  },
];
