// The official SDK as this suite installs it, for scripts outside this directory (the browser
// suite) that must share its instance with `as()` in api.mjs.
export { runs, tasks } from "@trigger.dev/sdk";
