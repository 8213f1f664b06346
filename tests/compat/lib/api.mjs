// Raw HTTP against taskgate's own bootstrap routes (admin, orgs, projects,
// keys), for which no official client exists. Response bodies are parsed with
// the @trigger.dev/core zod schemas wherever one exists for the route.

import { randomBytes } from "node:crypto";
import { auth } from "@trigger.dev/sdk";
import { CreateOrgResponseBody, GetProjectEnvResponse, GetProjectResponseBody } from "@trigger.dev/core/v3";
import { expectStatus } from "./check.mjs";

export const hex = (bytes = 4) => randomBytes(bytes).toString("hex");

/**
 * fetch with a bearer token and a JSON body. Resolves to
 * `{ status, body, text, headers }` whatever the status; `body` is the parsed
 * JSON or undefined.
 */
export async function http(ctx, method, path, { token, body, headers = {}, signal } = {}) {
  const init = { method, headers: { ...headers }, signal };
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const res = await fetch(`${ctx.url}${path}`, init);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, body: json, text, headers: res.headers, method, path };
}

/** Run `fn` with the SDK pointed at this server and holding `token`. */
export function as(ctx, token, fn) {
  return auth.withAuth({ accessToken: token, baseURL: ctx.url }, fn);
}

// --- bootstrap --------------------------------------------------------------

export async function createUser(ctx, { admin = false } = {}) {
  const email = `compat-${hex()}@example.com`;
  const res = await http(ctx, "POST", "/admin/api/v1/users", {
    token: ctx.adminToken,
    body: { email, name: "Compat User", admin },
  });
  expectStatus(res, 201);
  if (res.body.email !== email) throw new Error(`created user has email ${res.body.email}, expected ${email}`);
  return res.body;
}

export async function createPat(ctx, userId) {
  const res = await http(ctx, "POST", `/admin/api/v1/users/${userId}/personal-access-tokens`, {
    token: ctx.adminToken,
    body: { name: `compat-${hex()}` },
  });
  expectStatus(res, 201);
  if (!/^tr_pat_/.test(res.body.token)) throw new Error(`PAT does not start with tr_pat_: ${res.body.token}`);
  return res.body.token;
}

/** A non-admin user with a PAT. */
export async function createUserWithPat(ctx) {
  const user = await createUser(ctx);
  return { user, pat: await createPat(ctx, user.id) };
}

export async function createOrg(ctx, pat) {
  const res = await http(ctx, "POST", "/api/v1/orgs", { token: pat, body: { title: `Compat ${hex()}` } });
  expectStatus(res, 201);
  return CreateOrgResponseBody.parse(res.body);
}

export async function createProject(ctx, pat, org) {
  const res = await http(ctx, "POST", `/api/v1/orgs/${org.slug}/projects`, {
    token: pat,
    body: { name: `compat-${hex()}` },
  });
  expectStatus(res, 201);
  const project = GetProjectResponseBody.parse(res.body);
  if (project.organization.id !== org.id) throw new Error(`project belongs to org ${project.organization.id}, not ${org.id}`);
  return project;
}

export async function getEnv(ctx, pat, ref, env) {
  const res = await http(ctx, "GET", `/api/v1/projects/${ref}/${env}`, { token: pat });
  expectStatus(res, 200);
  return GetProjectEnvResponse.parse(res.body);
}

/**
 * The shared owner of this backend run: a non-admin user, its PAT and an org
 * it owns. Created once per backend, on first use.
 */
export function owner(ctx) {
  ctx.owner ??= (async () => {
    const { user, pat } = await createUserWithPat(ctx);
    const org = await createOrg(ctx, pat);
    return { user, pat, org };
  })();
  return ctx.owner;
}

/** A fresh project in the owner's org, with its prod secret key. */
export async function newProject(ctx) {
  const { user, pat, org } = await owner(ctx);
  const project = await createProject(ctx, pat, org);
  const prod = await getEnv(ctx, pat, project.externalRef, "prod");
  if (!/^tr_prod_[A-Za-z0-9]+$/.test(prod.apiKey)) throw new Error(`prod key has an unexpected format: ${prod.apiKey}`);
  return { user, pat, org, project, ref: project.externalRef, prodKey: prod.apiKey };
}

export async function rotateKey(ctx, pat, ref, env = "prod") {
  const res = await http(ctx, "POST", `/api/v1/projects/${ref}/${env}/regenerate-api-key`, { token: pat });
  expectStatus(res, 200);
  return res.body; // { apiKey, revokedApiKey: { id, expiresAt } }
}

/** End (expiresAt null) or move the grace window of a rotated key. */
export async function setGrace(ctx, revokedApiKeyId, expiresAt) {
  const res = await http(ctx, "POST", `/admin/api/v1/revoked-api-keys/${revokedApiKeyId}`, {
    token: ctx.adminToken,
    body: { expiresAt },
  });
  expectStatus(res, 200);
  return res.body;
}

/** The environment id (`sub`) the server reports for a secret key. */
export async function envClaims(ctx, secretKey) {
  const res = await http(ctx, "POST", "/api/v1/auth/jwt/claims", { token: secretKey });
  expectStatus(res, 200);
  return res.body;
}
