// Small assertion helpers with messages that say what the server did.

import assert from "node:assert/strict";

export { assert };

const show = (v) => (typeof v === "string" ? v : JSON.stringify(v));

/** Assert the status of an `http()` result; the message carries the body. */
export function expectStatus(res, status) {
  if (res.status !== status) {
    throw new Error(`${res.method} ${res.path}: expected ${status}, got ${res.status} ${res.text.slice(0, 500)}`);
  }
  return res;
}

/** Assert an `http()` result is exactly `status` with `{"error": message}`. */
export function expectError(res, status, message) {
  expectStatus(res, status);
  if (res.body?.error !== message) {
    throw new Error(`${res.method} ${res.path}: expected error ${show(message)}, got ${res.text.slice(0, 500)}`);
  }
}

/**
 * Await `promise` and assert it rejects with an SDK ApiError of `status`
 * (and, when given, that error class and message).
 */
export async function rejects(promise, { status, message, type }) {
  let value;
  try {
    value = await promise;
  } catch (err) {
    if (type && !(err instanceof type)) {
      throw new Error(`expected ${type.name}, got ${err?.constructor?.name}: ${err?.message}`);
    }
    if (err?.status !== status) {
      throw new Error(`expected status ${status}, got ${err?.status ?? "none"} (${err?.constructor?.name}: ${err?.message})`);
    }
    if (message !== undefined && err.message !== message) {
      throw new Error(`expected message ${show(message)}, got ${show(err.message)}`);
    }
    return err;
  }
  throw new Error(`expected a ${status} error, but the call succeeded with ${show(value)?.slice(0, 300)}`);
}

/** The payload of a compact JWS, without verifying it. */
export function decodeJwt(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error(`not a compact JWS: ${token.slice(0, 40)}…`);
  const [header, payload] = parts.slice(0, 2).map((p) => JSON.parse(Buffer.from(p, "base64url").toString("utf8")));
  return { header, payload };
}

export function expectRunId(id) {
  if (typeof id !== "string" || !/^run_[A-Za-z0-9]+$/.test(id)) throw new Error(`expected a run_ id, got ${show(id)}`);
  return id;
}

/** Resolve after `ms`, or reject early when `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
}
