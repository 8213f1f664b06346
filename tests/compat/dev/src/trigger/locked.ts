import { tasks } from "@trigger.dev/sdk";
import { task } from "@trigger.dev/sdk";
import { slowChild } from "./waits";

/** Triggers, from inside a run (locked to its version), a task and a queue the version lacks. */
export const lockedTrigger = task({
  id: "locked-trigger",
  run: async () => {
    const refusal = async (call: () => Promise<unknown>) => {
      try {
        await call();
        return "accepted";
      } catch (e) {
        return e instanceof Error ? e.message : String(e);
      }
    };
    return {
      task: await refusal(() => tasks.triggerAndWait("no-such-task", {})),
      queue: await refusal(() => slowChild.triggerAndWait({}, { queue: "no-such-queue" })),
    };
  },
});
