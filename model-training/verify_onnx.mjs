// Runs each exported graph in onnxruntime-node on the inputs torch saw and
// prints the max abs error of every output (called by export_packs.py).
import { readFileSync } from "node:fs";
import ort from "onnxruntime-node";

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const report = [];
for (const c of cases) {
  const session = await ort.InferenceSession.create(c.model);
  const feeds = {};
  for (const [name, t] of Object.entries(c.inputs)) {
    const data = t.dtype === "int64" ? BigInt64Array.from(t.data.map(BigInt)) : Float32Array.from(t.data);
    feeds[name] = new ort.Tensor(t.dtype, data, t.dims);
  }
  const out = await session.run(feeds);
  const errors = session.outputNames.map((name, i) => {
    const got = out[name].data;
    const want = c.expected[i].data;
    if (got.length !== want.length) return Number.POSITIVE_INFINITY;
    let worst = 0;
    for (let j = 0; j < want.length; j++) worst = Math.max(worst, Math.abs(Number(got[j]) - want[j]));
    return worst;
  });
  report.push({ model: c.model, errors });
}
process.stdout.write(JSON.stringify(report));
