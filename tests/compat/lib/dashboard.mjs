// The dashboard as a browser without JavaScript uses it: sign in with a link from
// `taskgate login-link`, keep the session cookie, read forms and post them.

import { execFile } from "node:child_process";
import { assert } from "./check.mjs";

/** A one-time sign-in link for `email`, printed by `taskgate login-link` on the server's host. */
export function loginLink(ctx, email) {
  const port = new URL(ctx.url).port;
  const args = ["login-link", "--email", email, "--data-dir", ctx.dataDir, "--listen", `127.0.0.1:${port}`];
  if (ctx.databaseUrl) args.push("--database-url", ctx.databaseUrl);
  return new Promise((resolve, reject) => {
    execFile(ctx.bin, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`taskgate login-link failed: ${stderr || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

/** A signed-in browser session: `get` and `post` keep its cookies. */
export async function signIn(ctx, email) {
  const jar = new Map();
  const keep = (res) => {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq);
      if (/Max-Age=0/.test(line)) jar.delete(name);
      else jar.set(name, pair.slice(eq + 1));
    }
  };
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const request = async (method, path, form) => {
    const res = await fetch(new URL(path, ctx.url), {
      method,
      redirect: "manual",
      headers: {
        cookie: cookie(),
        ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    keep(res);
    return { status: res.status, location: res.headers.get("location"), text: await res.text() };
  };
  const link = await loginLink(ctx, email);
  const signed = await request("GET", link);
  assert.equal(signed.status, 303, signed.text);
  assert.ok(jar.has("tg_session"), "the sign-in link set a session cookie");
  return {
    get: (path) => request("GET", path),
    post: (path, form) => request("POST", path, form),
  };
}

/** The CSRF token of the first form on a page. */
export function csrfOf(html) {
  const m = html.match(/name="_csrf" value="([^"]+)"/);
  assert.ok(m, "the page has a form with a CSRF token");
  return m[1];
}
