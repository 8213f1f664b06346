// Tasks the compatibility suite triggers; each shows one behaviour of the engine.
import { logger, task } from "@trigger.dev/sdk";

/** Returns its output. */
export const hello = task({
  id: "compat-hello",
  run: async (payload: { name: string }) => ({ greeting: `Hello, ${payload.name}!` }),
});

/** Throws on every attempt: the default retry settings give it three. */
export const throws = task({
  id: "compat-throws",
  run: async (payload: { reason: string }) => {
    throw new TypeError(`Intentional failure: ${payload.reason}`);
  },
});

/** Fails its first two attempts, then succeeds. */
export const flaky = task({
  id: "compat-flaky",
  run: async (_payload: unknown, { ctx }) => {
    if (ctx.attempt.number < 3) throw new Error(`flaky attempt ${ctx.attempt.number}`);
    return { attempt: ctx.attempt.number };
  },
});

/** Throws once and is not retried. */
export const once = task({
  id: "compat-once",
  retry: { maxAttempts: 1 },
  run: async () => {
    throw new Error("no second chance");
  },
});

/** Runs until canceled (at most a minute). */
export const slow = task({
  id: "compat-slow",
  run: async () => {
    await new Promise((resolve) => setTimeout(resolve, 55_000));
    return { finished: true };
  },
});

/** Logs through the logger and the console. */
export const logs = task({
  id: "compat-logs",
  run: async (payload: { marker: string }) => {
    logger.info("structured line", { marker: payload.marker, n: 1 });
    logger.warn("a warning", { marker: payload.marker });
    console.log(`plain console line ${payload.marker}`);
    return { logged: 3 };
  },
});

/** Its first attempt dies of an exception thrown outside the task's own promise (the
 * process's uncaughtException); the second succeeds. */
export const uncaught = task({
  id: "compat-uncaught",
  retry: { maxAttempts: 2, minTimeoutInMs: 100, maxTimeoutInMs: 200 },
  run: async (_payload: unknown, { ctx }) => {
    if (ctx.attempt.number === 1) {
      setTimeout(() => {
        throw new Error("thrown outside the task's promise");
      }, 10);
      await new Promise((resolve) => setTimeout(resolve, 10_000));
    }
    return { attempt: ctx.attempt.number };
  },
});

/** Tries to read a file and says what happened, and which variables of its environment look
 * like taskgate's own: a deployed task must reach neither taskgate's data nor its secrets. */
export const probe = task({
  id: "compat-probe",
  run: async (payload: { path: string }) => {
    const { readFile } = await import("node:fs/promises");
    let read: string;
    try {
      await readFile(payload.path);
      read = "read";
    } catch (e) {
      read = (e as NodeJS.ErrnoException).code ?? String(e);
    }
    return {
      read,
      taskgateVars: Object.keys(process.env).filter((k) => k.startsWith("TASKGATE")),
    };
  },
});
