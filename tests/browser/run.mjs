// taskgate's dashboard in a real browser: the system's headless Chromium (Debian's `chromium`
// package), driven by puppeteer-core, which never downloads a browser. Against a taskgate the
// run starts itself, on SQLite and then on a fresh PostgreSQL database.
//
//   node run.mjs [--backend sqlite|postgres] [name filter…]
//
// TASKGATE_BIN names the server binary (default target/release/taskgate, built if missing);
// CHROMIUM names the browser (default /usr/bin/chromium); TASKGATE_TEST_DATABASE_URL names the
// PostgreSQL database next to which a scratch database is made. Screenshots of every page go
// to tests/browser/artifacts/.

import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";
import { createDatabase, dropDatabase, findBinary, startServer } from "../compat/lib/server.mjs";
import { createOrg, createPat, createProject, createUser, getEnv, http } from "../compat/lib/api.mjs";
import { assert } from "../compat/lib/check.mjs";
import { cliIn, describe } from "../compat/lib/cli.mjs";
import { devSession } from "../compat/lib/dev.mjs";
import { as, owner } from "../compat/lib/api.mjs";
import { runs, tasks } from "../compat/lib/sdk.mjs";
import { loginLink } from "../compat/lib/dashboard.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.join(here, "artifacts");
const require = createRequire(import.meta.url);
const axeSource = await readFile(require.resolve("axe-core/axe.min.js"), "utf8");

const args = process.argv.slice(2);
const backendArg = args.includes("--backend") ? args[args.indexOf("--backend") + 1] : undefined;
const filters = args.filter((a, i) => !a.startsWith("--") && args[i - 1] !== "--backend");

// --- helpers ----------------------------------------------------------------

/** A new browser page that records every request leaving the server's origin. */
async function newPage(ctx, { javascript = true } = {}) {
  const context = await ctx.browser.createBrowserContext();
  const page = await context.newPage();
  await page.setJavaScriptEnabled(javascript);
  page.foreign = [];
  page.on("request", (req) => {
    const url = req.url();
    if (!url.startsWith(`${ctx.url}/`) && !url.startsWith("data:")) page.foreign.push(url);
  });
  page.close = ((close) => async () => {
    await close.call(page);
    await context.close();
  })(page.close);
  return page;
}

/** Signs `page` in as `email` with a link from `taskgate login-link`. */
async function signIn(ctx, page, email) {
  const link = await loginLink(ctx, email);
  const res = await page.goto(link);
  assert.equal(res.status(), 200);
  assert.equal(new URL(page.url()).pathname, "/");
}

/** Saves a screenshot, audits the page with axe-core, and checks nothing left the origin. */
async function check(ctx, page, name) {
  await mkdir(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, `${ctx.backend}-${name}.png`), fullPage: true });
  const results = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.html).slice(0, 3) }));
  });
  const serious = results.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(serious, [], `${name}: axe-core violations ${JSON.stringify(serious, null, 2)}`);
  assert.deepEqual(page.foreign, [], `${name}: requests left the server's origin`);
}

/** axe-core is injected past the page's CSP (which rightly refuses inline scripts). */
async function withAxe(page) {
  await page.setBypassCSP(true);
  await page.evaluateOnNewDocument(axeSource);
}

/** An owner with an organization and a project: { user, pat, org, project, keysPath, prodKey }. */
async function ownedProject(ctx) {
  const user = await createUser(ctx);
  const pat = await createPat(ctx, user.id);
  const org = await createOrg(ctx, pat);
  const project = await createProject(ctx, pat, org);
  const prod = await getEnv(ctx, pat, project.externalRef, "prod");
  return {
    user,
    pat,
    org,
    project,
    prodKey: prod.apiKey,
    keysPath: `/orgs/${org.slug}/projects/${project.externalRef}/env/prod/apikeys`,
  };
}

async function keyWorks(ctx, key) {
  const res = await http(ctx, "POST", "/api/v1/auth/jwt/claims", { token: key });
  return res.status === 200;
}

// --- cases ------------------------------------------------------------------

const cases = [
  {
    name: "sign-in: a link from taskgate login-link signs in with an HttpOnly cookie, and sign-out ends it",
    async run(ctx) {
      const user = await createUser(ctx);
      const page = await newPage(ctx);
      await signIn(ctx, page, user.email);
      const [session] = (await page.cookies()).filter((c) => c.name === "tg_session");
      assert.ok(session, "a session cookie");
      assert.equal(session.httpOnly, true);
      assert.equal(session.sameSite, "Lax");
      assert.equal(await page.evaluate(() => document.cookie.includes("tg_session")), false);
      assert.ok((await page.content()).includes(user.email));
      await Promise.all([page.waitForNavigation(), page.click("header form button[type=submit]")]);
      assert.equal(new URL(page.url()).pathname, "/login");
      await page.goto(`${ctx.url}/`);
      assert.equal(new URL(page.url()).pathname, "/login", "signed out");
      await page.close();
    },
  },
  {
    name: "csrf: a form post without the session's token is refused",
    async run(ctx) {
      const user = await createUser(ctx);
      const page = await newPage(ctx);
      await signIn(ctx, page, user.email);
      const status = await page.evaluate(async () => {
        const res = await fetch("/logout", {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: "",
        });
        return res.status;
      });
      assert.equal(status, 403);
      await page.goto(`${ctx.url}/`);
      assert.equal(new URL(page.url()).pathname, "/", "still signed in");
      await page.close();
    },
  },
  {
    name: "keys: regenerate is enabled only once the words match; the old key shows its grace and works",
    async run(ctx) {
      const p = await ownedProject(ctx);
      const page = await newPage(ctx);
      await withAxe(page);
      await signIn(ctx, page, p.user.email);
      await page.goto(`${ctx.url}${p.keysPath}`);
      await check(ctx, page, "apikeys");
      await page.click("#regenerate summary");
      const words = await page.$eval("#confirm", (el) => el.dataset.confirm);
      const disabled = () => page.$eval("#regenerate button[type=submit]", (b) => b.disabled);
      assert.equal(await disabled(), true, "disabled before typing");
      await page.type("#confirm", "wrong words");
      assert.equal(await disabled(), true, "disabled while the text differs");
      await page.$eval("#confirm", (el) => {
        el.value = "";
      });
      await page.type("#confirm", words);
      assert.equal(await disabled(), false, "enabled once it matches");
      await Promise.all([page.waitForNavigation(), page.click("#regenerate button[type=submit]")]);
      const text = await page.$eval("main", (m) => m.innerText);
      assert.ok(text.includes("API keys regenerated for production environment"), text);
      assert.ok(text.includes("Valid until"), text);
      assert.ok(text.includes(`••••${p.prodKey.slice(-4)}`), text);
      const newKey = text.match(/The new key is (tr_prod_[A-Za-z0-9]+)/)?.[1];
      assert.ok(newKey, text);
      await check(ctx, page, "apikeys-after-rotation");
      assert.ok(await keyWorks(ctx, p.prodKey), "the old key works in its grace");
      assert.ok(await keyWorks(ctx, newKey));
      await page.reload();
      const again = await page.$eval("main", (m) => m.innerText);
      assert.ok(!again.includes(newKey), "the new key, shown once, is gone after a reload");
      assert.ok(again.includes("Valid until"), again);
      await page.close();
    },
  },
  {
    name: "keys: an administrator ends the grace from the page and the old key fails at once",
    async run(ctx) {
      const p = await ownedProject(ctx);
      const rotated = await http(ctx, "POST", `/api/v1/projects/${p.project.externalRef}/prod/regenerate-api-key`, {
        token: p.pat,
      });
      assert.equal(rotated.status, 200);
      // The administrator is a member of the organization, so the page is theirs to see.
      const admin = await createUser(ctx, { admin: true });
      const added = await http(ctx, "POST", `/api/v1/orgs/${p.org.slug}/members`, {
        token: p.pat,
        body: { email: admin.email, role: "admin" },
      });
      assert.ok(added.status === 200 || added.status === 201, JSON.stringify(added.body));
      const page = await newPage(ctx);
      await signIn(ctx, page, admin.email);
      await page.goto(`${ctx.url}${p.keysPath}`);
      assert.ok(await keyWorks(ctx, p.prodKey));
      const end = await page.$('form[action*="/grace/"] input[value="end"] ~ button');
      assert.ok(end, "an End now button");
      await Promise.all([page.waitForNavigation(), end.click()]);
      const text = await page.$eval("main", (m) => m.innerText);
      assert.ok(text.includes("no longer works"), text);
      assert.equal(await keyWorks(ctx, p.prodKey), false, "ended at once");
      await page.close();
    },
  },
  {
    name: "keys: keyboard only, the regenerate panel opens with Enter and closes with Esc, returning focus",
    async run(ctx) {
      const p = await ownedProject(ctx);
      const page = await newPage(ctx);
      await signIn(ctx, page, p.user.email);
      await page.goto(`${ctx.url}${p.keysPath}`);
      let onSummary = false;
      for (let i = 0; i < 40 && !onSummary; i++) {
        await page.keyboard.press("Tab");
        onSummary = await page.evaluate(() => document.activeElement?.matches("#regenerate summary") ?? false);
      }
      assert.ok(onSummary, "Tab reaches Regenerate…");
      await page.keyboard.press("Enter");
      assert.equal(await page.$eval("#regenerate", (d) => d.open), true);
      await page.keyboard.press("Tab");
      assert.equal(await page.evaluate(() => document.activeElement?.id), "confirm");
      await page.keyboard.press("Escape");
      assert.equal(await page.$eval("#regenerate", (d) => d.open), false);
      assert.equal(await page.evaluate(() => document.activeElement?.matches("#regenerate summary")), true);
      await page.close();
    },
  },
  {
    name: "tokens: create a personal access token (shown once), mint a user-actor token, revoke",
    async run(ctx) {
      const user = await createUser(ctx);
      const page = await newPage(ctx);
      await withAxe(page);
      await signIn(ctx, page, user.email);
      await page.goto(`${ctx.url}/account/tokens`);
      await check(ctx, page, "tokens");
      await page.type("#name", "browser");
      await Promise.all([page.waitForNavigation(), page.click("#create-heading ~ form button[type=submit]")]);
      const shown = await page.$eval("main", (m) => m.innerText);
      const pat = shown.match(/tr_pat_[A-Za-z0-9]+/)?.[0];
      assert.ok(pat, shown);
      assert.equal((await http(ctx, "GET", "/api/v1/orgs", { token: pat })).status, 200);
      await page.select("#ttl", "86400");
      await page.type("#cap", "read:all");
      await Promise.all([page.waitForNavigation(), page.click("#uat-heading ~ form button[type=submit]")]);
      const minted = await page.$eval("main", (m) => m.innerText);
      const uat = minted.match(/tr_uat_[A-Za-z0-9._-]+/)?.[0];
      assert.ok(uat, minted);
      assert.ok(!minted.includes(pat), "the token is gone after the next page");
      assert.equal((await http(ctx, "GET", "/api/v1/orgs", { token: uat })).status, 200);
      await Promise.all([page.waitForNavigation(), page.click('button[aria-label="Revoke browser"]')]);
      assert.equal((await http(ctx, "GET", "/api/v1/orgs", { token: pat })).status, 401);
      assert.equal((await http(ctx, "GET", "/api/v1/orgs", { token: uat })).status, 401);
      await page.close();
    },
  },
  {
    name: "login: trigger.dev login (official CLI 4.8.3) completes through the consent page",
    async run(ctx) {
      const user = await createUser(ctx);
      const home = await mkdtemp(path.join(os.tmpdir(), "taskgate-browser-login-"));
      try {
        const start = await cliIn(home, ["login", "--no-browser", "-a", ctx.url]);
        assert.equal(start.code, 0, describe(start));
        const url = (start.stdout + start.stderr).match(/http:\/\/127\.0\.0\.1:\d+\/account\/authorization-code\/[A-Za-z0-9]{64}/)?.[0];
        assert.ok(url, describe(start));
        const page = await newPage(ctx);
        await withAxe(page);
        await page.goto(url);
        assert.equal(new URL(page.url()).pathname, "/login", "signing in comes first");
        await check(ctx, page, "login");
        await page.goto(await loginLink(ctx, user.email));
        assert.equal(page.url(), url, "back on the consent page once signed in");
        await check(ctx, page, "consent");
        await Promise.all([page.waitForNavigation(), page.click("main form button[type=submit]")]);
        const code = await page.$eval("#approval-code", (el) => el.textContent);
        await check(ctx, page, "consent-approved");
        const finish = await cliIn(home, ["login", "--code", code]);
        assert.equal(finish.code, 0, describe(finish));
        const who = await cliIn(home, ["whoami"]);
        assert.ok((who.stdout + who.stderr).includes(user.email), describe(who));
        await page.close();
      } finally {
        await rm(home, { recursive: true, force: true });
      }
    },
  },
  {
    name: "runs: filters survive the URL; a failed run's page shows its error; cancel and replay work",
    async run(ctx) {
      const w = await worker(ctx);
      const page = await newPage(ctx);
      await withAxe(page);
      await signIn(ctx, page, w.email);
      await page.goto(`${ctx.url}${w.base}/runs`);
      await check(ctx, page, "runs");
      await page.select("#status", "FAILED");
      await page.select("#task", "compat-throws");
      await Promise.all([page.waitForNavigation(), page.click('form[aria-label="Filter runs"] button[type=submit]')]);
      const url = new URL(page.url());
      assert.equal(url.searchParams.get("status"), "FAILED");
      assert.equal(url.searchParams.get("task"), "compat-throws");
      await page.reload();
      assert.equal(await page.$eval("#status", (s) => s.value), "FAILED", "the filter survives a reload");
      const listed = await page.$eval("main", (m) => m.innerText);
      assert.ok(listed.includes(w.failed) && !listed.includes(w.succeeded), listed);
      await Promise.all([page.waitForNavigation(), page.click(`a[href$="/runs/${w.failed}"]`)]);
      const detail = await page.$eval("main", (m) => m.innerText);
      assert.ok(detail.includes("TypeError: Intentional failure: browser"), detail);
      await check(ctx, page, "run");
      await Promise.all([page.waitForNavigation(), page.click('form[action$="/replay"] button')]);
      assert.ok((await page.$eval("main", (m) => m.innerText)).includes(`Replayed ${w.failed}`));
      // A run that waits (a delayed one) can be canceled from its page.
      const { id: delayed } = await as(ctx, w.devKey, () => tasks.trigger("compat-hello", { name: "later" }, { delay: "1h" }));
      await page.goto(`${ctx.url}${w.base}/runs/${delayed}`);
      await Promise.all([page.waitForNavigation(), page.click('form[action$="/cancel"] button')]);
      assert.ok((await page.$eval("main", (m) => m.innerText)).includes("CANCELED"));
      await page.close();
    },
  },
  {
    name: "errors: filters survive the URL; resolve, ignore and unresolve (one or checked rows) show in the history with the user",
    async run(ctx) {
      const w = await worker(ctx);
      const page = await newPage(ctx);
      await withAxe(page);
      await signIn(ctx, page, w.email);
      await page.goto(`${ctx.url}${w.base}/errors`);
      await page.type("#search", "intentional");
      await page.select("#period", "7d");
      await Promise.all([page.waitForNavigation(), page.click('form[aria-label="Filter errors"] button[type=submit]')]);
      const url = new URL(page.url());
      assert.equal(url.searchParams.get("search"), "intentional");
      assert.equal(url.searchParams.get("period"), "7d");
      await page.reload();
      assert.equal(await page.$eval("#search", (s) => s.value), "intentional");
      await check(ctx, page, "errors");
      await Promise.all([page.waitForNavigation(), page.click('a[href*="/errors/error_"]')]);
      await check(ctx, page, "error");
      await page.type("#version", "20990101.1");
      await Promise.all([page.waitForNavigation(), page.click('form[action$="/resolve"] button')]);
      let text = await page.$eval("main", (m) => m.innerText);
      assert.ok(text.includes("Marked as resolved in version 20990101.1."), text);
      await Promise.all([page.waitForNavigation(), page.click('form[action$="/unresolve"] button')]);
      // The custom ignore needs a condition; the form says so.
      await page.click("#custom-ignore summary");
      await page.type("#reason", "noisy");
      await Promise.all([page.waitForNavigation(), page.click("#custom-ignore button[type=submit]")]);
      const error = await page.$eval("#custom-ignore-error", (e) => e.textContent);
      assert.ok(error.includes("Give an occurrence rate, a total, or both"), error);
      assert.equal(await page.$eval("#reason", (e) => e.value), "noisy", "what was typed is kept");
      // Keyboard only: Tab to "Ignore for 1 hour" and press Enter.
      await page.goto(page.url().replace(/\/ignore$/, ""));
      let focused = "";
      for (let i = 0; i < 60 && focused !== "Ignore for 1 hour"; i++) {
        await page.keyboard.press("Tab");
        focused = await page.evaluate(() => document.activeElement?.textContent?.trim() ?? "");
      }
      assert.equal(focused, "Ignore for 1 hour", "Tab reaches the row's actions");
      await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
      text = await page.$eval("main", (m) => m.innerText);
      assert.ok(text.includes("Marked as ignored."), text);
      for (const action of ["resolved", "unresolved", "ignored"]) {
        assert.ok(new RegExp(`${action}\\t${w.email.replace(/[.]/g, "\\.")}\\tdashboard_session`).test(text), `${action} by ${w.email}:\n${text}`);
      }
      // Rows checked on the list are triaged together, and the list keeps its filters.
      await page.goto(`${ctx.url}${w.base}/errors?period=7d`);
      await page.click('#bulk input[name="id"]');
      await Promise.all([page.waitForNavigation(), page.click('#bulk button[value="resolve"]')]);
      text = await page.$eval("main", (m) => m.innerText);
      assert.ok(text.includes("Marked 1 error as resolved."), text);
      assert.equal(new URL(page.url()).searchParams.get("period"), "7d");
      await page.close();
    },
  },
  {
    name: "team and admin: the pages render, pass axe-core, and their forms work",
    async run(ctx) {
      const p = await ownedProject(ctx);
      const member = await createUser(ctx);
      const page = await newPage(ctx);
      await withAxe(page);
      await signIn(ctx, page, p.user.email);
      await page.goto(`${ctx.url}/orgs/${p.org.slug}/settings/team`);
      await check(ctx, page, "team");
      await page.type("#email", member.email);
      await page.select("#role", "viewer");
      await Promise.all([page.waitForNavigation(), page.click("#add-heading ~ form button[type=submit]")]);
      assert.ok((await page.$eval("main", (m) => m.innerText)).includes(`Added ${member.email} as viewer.`));
      await page.close();

      const admin = await createUser(ctx, { admin: true });
      const adminPage = await newPage(ctx);
      await withAxe(adminPage);
      await signIn(ctx, adminPage, admin.email);
      await adminPage.goto(`${ctx.url}/admin`);
      await check(ctx, adminPage, "admin");
      await adminPage.goto(`${ctx.url}/admin/audit?action=member.added`);
      await check(ctx, adminPage, "audit");
      const audit = await adminPage.$eval("main", (m) => m.innerText);
      assert.ok(audit.includes("member.added") && audit.includes(p.user.email), audit);
      await adminPage.close();
    },
  },
  {
    name: "no-js: every page renders and its forms work with JavaScript off",
    async run(ctx) {
      const p = await ownedProject(ctx);
      const page = await newPage(ctx, { javascript: false });
      await page.goto(`${ctx.url}/login`);
      assert.ok((await page.$eval("h1", (h) => h.textContent)).includes("Sign in"));
      await signIn(ctx, page, p.user.email);
      assert.ok((await page.$eval("main", (m) => m.innerText)).includes(p.project.name));
      await page.goto(`${ctx.url}${p.keysPath}`);
      await page.click("#regenerate summary");
      const words = await page.$eval("#confirm", (el) => el.dataset.confirm);
      await page.type("#confirm", words);
      await Promise.all([page.waitForNavigation(), page.click("#regenerate button[type=submit]")]);
      assert.ok((await page.$eval("main", (m) => m.innerText)).includes("API keys regenerated"));
      await page.click("details:not(#regenerate) summary");
      const revealed = await page.$eval("details:not(#regenerate) code", (c) => c.textContent);
      assert.match(revealed, /^tr_prod_/);
      await page.goto(`${ctx.url}/`);
      await check(ctx, await withAxePage(ctx, page), "home");
      await page.close();
    },
  },
];

/**
 * A `trigger.dev dev` worker (the official CLI, from the compat suite) on the run's shared
 * project, with one failed and one successful run: { email, base, devKey, failed, succeeded }.
 */
async function worker(ctx) {
  ctx.worker ??= (async () => {
    const s = await devSession(ctx);
    const { user, org } = await owner(ctx);
    const finished = (id) => as(ctx, s.devKey, () => runs.poll(id, { pollIntervalMs: 250 }));
    const failed = (await as(ctx, s.devKey, () => tasks.trigger("compat-throws", { reason: "browser" }))).id;
    const succeeded = (await as(ctx, s.devKey, () => tasks.trigger("compat-hello", { name: "browser" }))).id;
    await finished(failed);
    await finished(succeeded);
    return { email: user.email, base: `/orgs/${org.slug}/projects/${s.ref}/env/dev`, devKey: s.devKey, failed, succeeded };
  })();
  return ctx.worker;
}

/** The same page, audited: axe needs script, so the audit reloads it with JavaScript on. */
async function withAxePage(ctx, page) {
  await page.setJavaScriptEnabled(true);
  await withAxe(page);
  await page.reload();
  return page;
}

// --- runner -----------------------------------------------------------------

async function runBackend(backend, bin, selected, adminUrl) {
  let db = null;
  let server = null;
  let browser = null;
  let failed = 0;
  try {
    if (adminUrl) db = await createDatabase(adminUrl);
    server = await startServer({ bin, databaseUrl: db?.url });
    browser = await puppeteer.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox", "--disable-dev-shm-usage", "--no-first-run"],
    });
    const ctx = {
      backend,
      url: server.url,
      adminToken: server.adminToken,
      bin,
      dataDir: server.dataDir,
      databaseUrl: db?.url,
      browser,
      cleanups: [],
    };
    console.log(`# ${backend}: server at ${server.url}`);
    for (const c of selected) {
      try {
        await c.run(ctx);
        console.log(`ok - ${backend} - ${c.name}`);
      } catch (err) {
        failed++;
        console.log(`not ok - ${backend} - ${c.name}\n  ${String(err.stack ?? err).split("\n").join("\n  ")}`);
      }
    }
    if (failed) console.log(server.logs().split("\n").slice(-40).map((l) => `# ${l}`).join("\n"));
    for (const stop of ctx.cleanups.reverse()) await stop().catch((e) => console.log(`# cleanup failed: ${e.message}`));
  } finally {
    await browser?.close();
    await server?.stop();
    if (db) await dropDatabase(adminUrl, db.name);
  }
  return failed;
}

const bin = await findBinary();
const selected = cases.filter((c) => filters.every((f) => c.name.includes(f)));
const adminUrl = process.env.TASKGATE_TEST_DATABASE_URL;
const backends = backendArg ? [backendArg] : ["sqlite", "postgres"];
let failed = 0;
console.log(`# taskgate browser: ${bin}, ${selected.length} cases`);
for (const backend of backends) {
  if (backend === "postgres" && !adminUrl) {
    console.log("not ok - postgres - TASKGATE_TEST_DATABASE_URL is not set");
    failed++;
    continue;
  }
  failed += await runBackend(backend, bin, selected, backend === "postgres" ? adminUrl : undefined);
}
console.log(failed ? `${failed} failed` : `all ${selected.length * backends.length} passed`);
process.exit(failed ? 1 : 0);
