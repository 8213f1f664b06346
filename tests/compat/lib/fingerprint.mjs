// An independent implementation of the error fingerprint (the algorithm docs/errors.md
// describes), in JavaScript, whose regular expressions are the ones the algorithm is defined
// by: the suite checks that the server's grouping agrees with it.

import { createHash } from "node:crypto";

const MESSAGE_RULES = [
  [/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "<uuid>"],
  [/run_[a-zA-Z0-9]+/g, "<run-id>"],
  [/\b[a-z]+_[a-zA-Z0-9]{8,}\b/g, "<id>"],
  [/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?/g, "<timestamp>"],
  [/\b\d{10,13}\b/g, "<timestamp>"],
  [/https?:\/\/[^\s]+/g, "<url>"],
  [/\b\d{4,}\b/g, "<id>"],
  [/(?:\/[^/\s]+){2,}/g, "<path>"],
  [/[A-Z]:\\(?:[^\\]+\\)+[^\\]+/g, "<path>"],
  [/\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,}\b/g, "<email>"],
  [/0x[0-9a-fA-F]{8,}/g, "<addr>"],
  [/"[^"]{20,}"/g, '"<string>"'],
  [/'[^']{20,}'/g, "'<string>'"],
];

function normalizeStack(stack) {
  return stack
    .split("\n")
    .slice(0, 5)
    .map((line) =>
      line
        .replace(/:\d+:\d+/g, ":_:_")
        .replace(/\b\d+\b/g, "_")
        .replace(/(?:\/[^/\s]+)+\/([^/\s]+)/g, "$1")
        .trim(),
    )
    .filter(Boolean)
    .join("|");
}

/** The 16-hex-character fingerprint of a run's error (a `TaskRunError`), "" for a non-object. */
export function fingerprint(error) {
  if (!error || typeof error !== "object" || Array.isArray(error)) return "";
  const type = String(error.type || error.name || "Error");
  let message = String(error.message || error.name || error.raw || "");
  for (const [re, replacement] of MESSAGE_RULES) message = message.replace(re, replacement);
  const stack = String(error.stack || error.stacktrace || "");
  const input = `${type}:${message}:${stack ? normalizeStack(stack) : ""}`;
  return createHash("sha256").update(input).digest("hex").slice(0, 16);
}
