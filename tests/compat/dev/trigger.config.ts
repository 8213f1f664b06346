// The compatibility suite's task project. The suite creates a project per server and passes
// its ref in TASKGATE_COMPAT_PROJECT_REF before starting `trigger.dev dev` here.
import { defineConfig } from "@trigger.dev/sdk";

export default defineConfig({
  project: process.env.TASKGATE_COMPAT_PROJECT_REF ?? "proj_set_by_the_compat_suite",
  dirs: ["./src/trigger"],
  maxDuration: 60,
  // Retries in development, fast, so the retry cases finish in seconds.
  retries: {
    enabledInDev: true,
    default: { maxAttempts: 3, minTimeoutInMs: 100, maxTimeoutInMs: 400, factor: 2, randomize: false },
  },
});
