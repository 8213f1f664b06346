// Cases for capabilities taskgate does not have yet. The runner skips these
// (printing `skip - <name> (pending)`) so they never count as passed. When a
// capability lands, delete its names here; `npm test -- --include-pending`
// runs them anyway to see which already pass.

export default new Set([
]);
