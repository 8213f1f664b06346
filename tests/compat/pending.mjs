// Cases for capabilities taskgate does not have yet. The runner skips these
// (printing `skip - <name> (pending)`) so they never count as passed. When a
// capability lands, delete its names here; `npm test -- --include-pending`
// runs them anyway to see which already pass.

export default new Set([
  // Intermittent: in about one run of three the dev CLI does not confirm the cancel of a
  // waiting parent whose child has just started, and the run stays PENDING_CANCEL until the
  // 60 s unconfirmed-cancel fallback ends it. Under investigation; the cancel itself, the
  // cascade to the child and the fallback are covered by the Rust suites.
  "waits: cancelling a waiting parent stops it within 2 s and cancels its child",
]);
