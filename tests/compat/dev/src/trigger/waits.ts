// Tasks that wait: for a child, a batch, a time or a token. Each returns what it got, so the
// suite can check every result reached the waiting run.
import { batch, queue, task, wait } from "@trigger.dev/sdk";

/** Doubles its input. */
export const double = task({
  id: "wait-double",
  run: async (payload: { n: number }) => ({ doubled: payload.n * 2 }),
});

/** Fails at once, without retries. */
export const fails = task({
  id: "wait-fails",
  retry: { maxAttempts: 1 },
  run: async (payload: { reason: string }) => {
    throw new Error(`child failed: ${payload.reason}`);
  },
});

/** Waits for one child and returns its result. */
export const parent = task({
  id: "wait-parent",
  run: async (payload: { n: number; fail?: boolean }) => {
    const result = payload.fail
      ? await fails.triggerAndWait({ reason: "asked to" })
      : await double.triggerAndWait({ n: payload.n });
    return result.ok
      ? { ok: true, output: result.output }
      : { ok: false, error: result.error instanceof Error ? result.error.message : String(result.error) };
  },
});

/** Waits for a batch whose even items double and odd ones fail; returns every result. */
export const batchParent = task({
  id: "wait-batch",
  run: async (payload: { count: number }) => {
    const items = Array.from({ length: payload.count }, (_, i) =>
      i % 2 === 0
        ? { task: double, payload: { n: i } }
        : { task: fails, payload: { reason: `item ${i}` } },
    );
    const result = await batch.triggerByTaskAndWait(items);
    return result.runs.map((r) =>
      r.ok ? (r.output as { doubled: number }).doubled : `error: ${(r.error as Error).message}`,
    );
  },
});

/** Sleeps with wait.for and says how long it waited. */
export const sleeper = task({
  id: "wait-sleeper",
  run: async (payload: { seconds: number }) => {
    const start = Date.now();
    await wait.for({ seconds: payload.seconds });
    return { waitedMs: Date.now() - start };
  },
});

/** Waits for a token and returns what it resumed with. */
export const tokenWaiter = task({
  id: "wait-token",
  run: async (payload: { token: string }) => {
    const result = await wait.forToken<Record<string, unknown>>(payload.token);
    return result.ok
      ? { ok: true, output: result.output }
      : { ok: false, error: result.error.message, name: result.error.name };
  },
});

/** Waits for a child that runs until it is cancelled. */
export const waitsForSlow = task({
  id: "wait-for-slow",
  run: async () => {
    const result = await slowChild.triggerAndWait({});
    return { ok: result.ok };
  },
});

export const slowChild = task({
  id: "wait-slow-child",
  run: async () => {
    await new Promise((resolve) => setTimeout(resolve, 55_000));
    return { finished: true };
  },
});

/** A queue that runs one run at a time. */
const single = queue({ name: "compat-single", concurrencyLimit: 1 });

/** On the single queue: waits for a child on the same queue. */
export const queuedParent = task({
  id: "queue-parent",
  queue: single,
  run: async () => {
    const result = await queuedChild.triggerAndWait({});
    return { childOk: result.ok, child: result.ok ? result.output : null };
  },
});

export const queuedChild = task({
  id: "queue-child",
  queue: single,
  run: async () => ({ child: true }),
});

/** On the single queue: holds it for a moment and says when. */
export const queuedHold = task({
  id: "queue-hold",
  queue: single,
  run: async () => {
    const start = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 300));
    return { start, end: Date.now() };
  },
});
