// The official CLI's MCP server (`trigger.dev mcp`, 4.8.3), driven over stdio by the official
// MCP client (@modelcontextprotocol/sdk, from this suite's lockfile), as a coding agent's host
// runs it: a profile for this server in a scratch home, the project named on the command line.

import { rm } from "node:fs/promises";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { CLI_BIN, cliEnv, profileHome } from "./cli.mjs";

/**
 * Starts the MCP server with `pat`'s profile for project `ref` and connects to it, with `env`
 * added to its environment (and so to the `trigger.dev dev` its start_dev_server runs).
 * Returns `{ client, call, close }`; `call(name, args)` answers `{ isError, text }`, the text
 * of the tool's content joined.
 */
export async function mcpSession(ctx, pat, ref, { env = {} } = {}) {
  const home = await profileHome(ctx, pat);
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI_BIN, "mcp", "--project-ref", ref, "--skip-telemetry"],
    env: { ...cliEnv(home), ...env },
    cwd: home,
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (d) => (stderr += d));
  const client = new Client({ name: "taskgate-compat", version: "1.0.0" });
  try {
    await client.connect(transport);
  } catch (e) {
    await rm(home, { recursive: true, force: true });
    throw new Error(`the MCP server did not start: ${e.message}\n${stderr}`);
  }
  const call = async (name, args = {}) => {
    const r = await client.callTool({ name, arguments: args });
    const text = (r.content ?? []).map((c) => c.text ?? "").join("\n");
    return { isError: Boolean(r.isError), text };
  };
  const close = async () => {
    await client.close().catch(() => {});
    await rm(home, { recursive: true, force: true });
  };
  return { client, call, close, stderr: () => stderr };
}
