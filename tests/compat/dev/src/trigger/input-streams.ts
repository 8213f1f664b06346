import { streams, task } from "@trigger.dev/sdk";

/** What a person (or another system) sends a running task. */
export const decisions = streams.input<{ approved: boolean; n: number }>({ id: "decisions" });

/** `.once()`: the first decision sent. */
export const inputOnce = task({
  id: "input-once",
  run: async () => decisions.once({ timeoutMs: 60_000 }).unwrap(),
});

/** `.on()`: the first three decisions, in order. */
export const inputOn = task({
  id: "input-on",
  run: async () => {
    const seen: number[] = [];
    await new Promise<void>((resolve) => {
      const subscription = decisions.on((d) => {
        seen.push(d.n);
        if (seen.length === 3) {
          subscription.off();
          resolve();
        }
      });
    });
    return { seen };
  },
});

/** `.wait()`: suspends in the engine until a decision is sent, twice. */
export const inputWait = task({
  id: "input-wait",
  run: async () => {
    const first = await decisions.wait({ timeout: "2m" }).unwrap();
    const second = await decisions.wait({ timeout: "2m" }).unwrap();
    return { first: first.n, second: second.n };
  },
});
