// The CLI's MCP server (`trigger.dev mcp`, 4.8.3) as a coding agent drives it: the official
// MCP client over stdio calls its tools against taskgate. One server process per backend,
// for a project of the suite's owner, serves the cases in order.

import { runs, tasks } from "@trigger.dev/sdk";
import { as, http, newProject } from "../lib/api.mjs";
import { assert, expectRunId, expectStatus } from "../lib/check.mjs";
import { TASK_PROJECT } from "../lib/cli.mjs";
import { mcpSession } from "../lib/mcp.mjs";

const MCP_TIMEOUT_MS = 90_000;

/** The backend's MCP session: `{ p, call, client }`, started once. */
function session(ctx) {
  ctx.mcp ??= (async () => {
    const p = await newProject(ctx);
    // start_dev_server runs `trigger.dev dev` in the suite's task project for this project.
    const s = await mcpSession(ctx, p.pat, p.ref, {
      env: { TASKGATE_COMPAT_PROJECT_REF: p.ref, AI_AGENT: "taskgate-compat" },
    });
    ctx.cleanups.push(() => s.close());
    return { p, ...s };
  })();
  return ctx.mcp;
}

/** A tool's answer that must not be an error; returns its text. The project is named in
 * every call, as an agent outside the project's directory names it. */
async function ok(s, name, args = {}) {
  const r = await s.call(name, { projectRef: s.p.ref, ...args });
  assert.equal(r.isError, false, `${name} failed: ${r.text}\n--- server stderr\n${s.stderr().slice(-2000)}`);
  return r.text;
}

export default [
  {
    name: "mcp: the CLI's MCP server starts against taskgate and lists its tools",
    timeout: MCP_TIMEOUT_MS,
    async run({ ctx }) {
      const s = await session(ctx);
      const { tools } = await s.client.listTools();
      const names = tools.map((t) => t.name);
      for (const name of ["whoami", "list_orgs", "list_projects", "list_runs", "get_run_details", "get_span_details", "cancel_run", "replay_run", "list_preview_branches"]) {
        assert.ok(names.includes(name), `${name} missing from ${names.join(", ")}`);
      }
    },
  },
  {
    name: "mcp: whoami, list_orgs and list_projects describe the caller's account",
    timeout: MCP_TIMEOUT_MS,
    async run({ ctx }) {
      const s = await session(ctx);
      assert.match(await ok(s, "whoami"), new RegExp(s.p.user.email.replace(/[.+]/g, "\\$&")));
      assert.match(await ok(s, "list_orgs"), new RegExp(s.p.org.slug));
      assert.match(await ok(s, "list_projects"), new RegExp(s.p.ref));
    },
  },
  {
    name: "mcp: create_project_in_org creates a project the caller then lists",
    timeout: MCP_TIMEOUT_MS,
    async run({ ctx }) {
      const s = await session(ctx);
      const name = `mcp-made-${Date.now()}`;
      const created = await ok(s, "create_project_in_org", { orgParam: s.p.org.slug, name });
      const ref = created.match(/proj_[a-z0-9]+/)?.[0];
      assert.ok(ref, created);
      const res = await http(ctx, "GET", `/api/v1/projects/${ref}`, { token: s.p.pat });
      expectStatus(res, 200);
      assert.equal(res.body.name, name);
    },
  },
  {
    name: "mcp: list_runs, get_run_details and get_span_details show a run and its trace",
    timeout: MCP_TIMEOUT_MS,
    async run({ ctx }) {
      const s = await session(ctx);
      const { id } = await as(ctx, s.p.prodKey, () => tasks.trigger("mcp-task", { n: 1 }, { tags: ["mcp"] }));
      expectRunId(id);
      assert.match(await ok(s, "list_runs", { environment: "prod" }), new RegExp(id));
      const details = await ok(s, "get_run_details", { environment: "prod", runId: id });
      assert.match(details, /## Run Details/);
      assert.match(details, /Trace ID: [0-9a-f]{32}/);
      assert.match(details, /mcp-task \[PARTIAL\]/, "a queued run's span is still open");
      const spanId = details.match(/\[([0-9a-f]{16})\]/)?.[1];
      assert.ok(spanId, details);
      const span = await ok(s, "get_span_details", { environment: "prod", runId: id, spanId });
      assert.match(span, new RegExp(`Span ID: ${spanId}`));
      assert.match(span, /Entity Type: run/);
    },
  },
  {
    name: "mcp: cancel_run and replay_run act on a run",
    timeout: MCP_TIMEOUT_MS,
    async run({ ctx }) {
      const s = await session(ctx);
      const { id } = await as(ctx, s.p.prodKey, () => tasks.trigger("mcp-task", { n: 2 }));
      await ok(s, "cancel_run", { environment: "prod", runId: id });
      const canceled = await as(ctx, s.p.prodKey, () => runs.retrieve(id));
      assert.equal(canceled.status, "CANCELED");
      const replayed = await ok(s, "replay_run", { environment: "prod", runId: id });
      const newId = replayed.match(/run_[A-Za-z0-9]+/g)?.find((r) => r !== id);
      assert.ok(newId, replayed);
      const run = await as(ctx, s.p.prodKey, () => runs.retrieve(newId));
      assert.equal(run.taskIdentifier, "mcp-task");
      assert.deepEqual(run.payload, { n: 2 });
    },
  },
  {
    name: "mcp: list_preview_branches lists the project's preview branches",
    timeout: MCP_TIMEOUT_MS,
    async run({ ctx }) {
      const s = await session(ctx);
      assert.match(await ok(s, "list_preview_branches"), /No preview branches found/);
      const res = await http(ctx, "POST", `/api/v1/projects/${s.p.ref}/branches`, {
        token: s.p.pat,
        body: { env: "preview", branch: "feat/mcp" },
      });
      expectStatus(res, 200);
      assert.match(await ok(s, "list_preview_branches"), /Found 1 preview branch\n[\s\S]*- feat\/mcp/);
    },
  },
  {
    name: "mcp: list_deploys reads the environment's deployments with the token it exchanges",
    timeout: MCP_TIMEOUT_MS,
    async run({ ctx }) {
      const s = await session(ctx);
      assert.match(await ok(s, "list_deploys", { projectRef: s.p.ref, environment: "prod" }), /^Found 0 deployments/);
    },
  },
  {
    name: "mcp: tools whose subject taskgate does not serve fail with taskgate's explanation",
    timeout: MCP_TIMEOUT_MS,
    async run({ ctx }) {
      const s = await session(ctx);
      const unserved = [
        ["list_prompts", "prompts", {}],
        ["list_dashboards", "dashboards", {}],
        ["get_query_schema", "queries", { table: "runs" }],
      ];
      for (const [tool, subject, args] of unserved) {
        const r = await s.call(tool, { projectRef: s.p.ref, environment: "prod", ...args });
        assert.equal(r.isError, true, `${tool}: ${r.text}`);
        assert.match(r.text, new RegExp(`taskgate does not serve ${subject}`), `${tool}: ${r.text}`);
      }
    },
  },
  {
    name: "mcp: start_dev_server runs trigger.dev dev for the project, which executes a run; stop_dev_server stops it",
    timeout: 150_000,
    async run({ ctx, step }) {
      const s = await session(ctx);
      step("start_dev_server");
      const started = await ok(s, "start_dev_server", { configPath: TASK_PROJECT });
      try {
        assert.match(started, /Dev server is ready/, started);
        assert.match(await ok(s, "dev_server_status"), /Local worker ready/);
        const triggered = await ok(s, "trigger_task", { environment: "dev", taskId: "compat-hello", payload: { name: "dev server" } });
        const id = triggered.match(/run_[A-Za-z0-9]+/)?.[0];
        assert.ok(id, triggered);
        step(`waiting for ${id}`);
        const done = await ok(s, "wait_for_run_to_complete", { environment: "dev", runId: id, timeoutInSeconds: 60 });
        assert.match(done, /Hello, dev server!/, done);
      } finally {
        step("stop_dev_server");
        assert.match(await ok(s, "stop_dev_server"), /Dev server stopped/);
      }
    },
  },
];
