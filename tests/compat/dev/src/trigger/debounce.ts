import { task } from "@trigger.dev/sdk";

/** Reports the payload it ran with: which trigger's data a debounced run kept. */
export const debounced = task({
  id: "debounced",
  run: async (payload: { n: number }) => ({ n: payload.n }),
});
