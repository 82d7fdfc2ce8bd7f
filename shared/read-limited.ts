/**
 * The one bounded body reader of every service (edge request bodies and image downloads in workerd, signed
 * bodies in the functions on Node): reads a byte stream to the end, or stops once it passes `maxBytes`.
 *
 * What happens to the rest of an over-limit stream is the caller's choice. A download is cancelled (we opened
 * it, nobody else reads it). A request body still being uploaded is better drained before answering: cancelling
 * it mid-upload tears the connection down under the client (see edge/src/validate/read-body.ts).
 */
export type Overflow = "cancel" | "keep";

export type LimitedRead =
  | { ok: true; bytes: Uint8Array }
  /** Over the limit; `rest` is the still-locked reader with what was not read (already cancelled for "cancel"). */
  | { ok: false; read: number; rest: ReadableStreamDefaultReader<Uint8Array> };

export async function readLimitedStream(
  stream: ReadableStream<Uint8Array> | null,
  maxBytes: number,
  overflow: Overflow = "cancel",
): Promise<LimitedRead> {
  if (!stream) return { ok: true, bytes: new Uint8Array() };
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      if (overflow === "cancel") await reader.cancel().catch(() => {});
      return { ok: false, read: total, rest: reader };
    }
    chunks.push(value);
  }
  return { ok: true, bytes: concat(chunks, total) };
}

/** Reads to the end, or cancels the stream and returns null once it passes `maxBytes`. */
export async function readLimited(
  stream: ReadableStream<Uint8Array> | null,
  maxBytes: number,
): Promise<Uint8Array | null> {
  const result = await readLimitedStream(stream, maxBytes, "cancel");
  return result.ok ? result.bytes : null;
}

/**
 * Reads and discards the rest of a refused upload, so the client can finish sending and read its 413 on a
 * healthy connection; cancels past `maxBytes` more (a client streaming forever is cut off, not served).
 */
export async function drainLimited(reader: ReadableStreamDefaultReader<Uint8Array>, maxBytes: number): Promise<void> {
  let drained = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      drained += value.byteLength;
      if (drained > maxBytes) {
        await reader.cancel();
        return;
      }
    }
  } catch {
    // The client went away meanwhile: nothing left to drain.
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1 && chunks[0]) return chunks[0];
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
