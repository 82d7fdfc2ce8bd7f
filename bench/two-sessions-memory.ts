/**
 * The Node half of bench/two_sessions_memory.py: two onnxruntime-node sessions over the graphs it wrote (one
 * 128 MiB weight in one external data file, read by both), RSS growth after each.
 *
 *   npx tsx bench/two-sessions-memory.ts /tmp/two-sessions
 */
import { join } from "node:path";
import ort from "onnxruntime-node";

const dir = process.argv[2] ?? "/tmp/two-sessions";
const rss = () => process.memoryUsage().rss / 2 ** 20;
const x = new ort.Tensor("float32", new Float32Array(4096).fill(1), [1, 4096]);
const sizes = [rss()];
const sessions: ort.InferenceSession[] = [];
for (const name of ["a", "b"]) {
  const session = await ort.InferenceSession.create(join(dir, `${name}.onnx`), {
    intraOpNumThreads: 1,
    graphOptimizationLevel: "all",
  });
  await session.run({ X: x });
  sessions.push(session);
  sizes.push(rss());
}
const [base, one, two] = sizes as [number, number, number];
console.log(
  `onnxruntime-node: weights 128.0 MiB; RSS +${(one - base).toFixed(1)} MiB after the first session, ` +
    `+${(two - one).toFixed(1)} MiB after the second over the same data file`,
);
