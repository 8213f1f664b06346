import { metadata, streams, task } from "@trigger.dev/sdk";

/** `n` strings `prefix0`, `prefix1`… produced over time, as a model's tokens are. */
async function* produce(n: number, prefix: string) {
  for (let i = 0; i < n; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    yield `${prefix}${i}`;
  }
}

/** A stream defined once and used by writer and reader alike. */
export const definedText = streams.define<string>({ id: "compat-defined" });

/** `streams.pipe` of an async iterable. */
export const streamPipe = task({
  id: "stream-pipe",
  run: async ({ n }: { n: number }) => {
    const { waitUntilComplete } = streams.pipe("piped", produce(n, "p"));
    await waitUntilComplete();
    return { n };
  },
});

/** `streams.writer` writing parts one by one. */
export const streamWriter = task({
  id: "stream-writer",
  run: async ({ n }: { n: number }) => {
    const { waitUntilComplete } = streams.writer<string>("written", {
      execute: ({ write }) => {
        for (let i = 0; i < n; i++) write(`w${i}`);
      },
    });
    await waitUntilComplete();
    return { n };
  },
});

/** `metadata.stream`, consumed by the task as it is forwarded. */
export const streamMetadata = task({
  id: "stream-metadata",
  run: async ({ n }: { n: number }) => {
    const forwarded = await metadata.stream("meta", produce(n, "m"));
    let seen = 0;
    for await (const _part of forwarded) seen++;
    return { n, seen };
  },
});

/** A defined stream's `.pipe()`. */
export const streamDefined = task({
  id: "stream-defined",
  run: async ({ n }: { n: number }) => {
    const { waitUntilComplete } = definedText.pipe(produce(n, "d"));
    await waitUntilComplete();
    return { n };
  },
});
