import { createHash } from "node:crypto";
import { task } from "@trigger.dev/sdk";

const digest = (s: string) => createHash("sha256").update(s).digest("hex");

/** Reports what arrived: the size and digest of `blob`, and whether `at` is still a Date. */
export const packetEcho = task({
  id: "packet-echo",
  run: async (payload: { blob: string; at?: Date }) => ({
    length: payload.blob.length,
    sha256: digest(payload.blob),
    atIsDate: payload.at instanceof Date,
  }),
});

/** Returns `size` characters made of `seed`: an output the SDK offloads. */
export const packetBigOutput = task({
  id: "packet-big-output",
  run: async (payload: { size: number; seed: string }) => ({
    blob: payload.seed.repeat(Math.ceil(payload.size / payload.seed.length)).slice(0, payload.size),
  }),
});

/** Waits for a child's offloaded output and reports its size and digest. */
export const packetParent = task({
  id: "packet-parent",
  run: async (payload: { size: number; seed: string }) => {
    const result = await packetBigOutput.triggerAndWait(payload);
    if (!result.ok) throw result.error;
    return { length: result.output.blob.length, sha256: digest(result.output.blob) };
  },
});
