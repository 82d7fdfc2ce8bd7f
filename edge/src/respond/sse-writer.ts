import { sseFrame } from "../../../shared/server-sent-events.js";
import type { Frame } from "./answer-shape.js";

/** Writes OpenAI-style SSE (`data: <json>\n\n`, then `data: [DONE]`) and survives a client that has gone. */
export class SseWriter {
  private clientGone = false;

  constructor(private readonly writer: WritableStreamDefaultWriter<Uint8Array>) {}

  async data(value: unknown): Promise<void> {
    await this.write(sseFrame(JSON.stringify(value)));
  }

  async frames(frames: Frame[]): Promise<void> {
    for (const frame of frames) await this.write(sseFrame(frame.data, frame.event));
  }

  async done(): Promise<void> {
    await this.write(sseFrame("[DONE]"));
  }

  async close(): Promise<void> {
    if (!this.clientGone) await this.writer.close().catch(() => {});
  }

  private async write(bytes: Uint8Array): Promise<void> {
    if (this.clientGone) return;
    try {
      await this.writer.write(bytes);
    } catch {
      this.clientGone = true;
    }
  }
}

export function sseStream(): { readable: ReadableStream<Uint8Array>; sse: SseWriter } {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  return { readable, sse: new SseWriter(writable.getWriter()) };
}
