/**
 * The stub small function's offline calibrated score (as a deployment's serving-defaults.json `agreement`): every
 * exit decision of test/node/stub-function.ts carries it, and the edge's tests predict with it. No Node imports, so
 * both the stub (Node) and the tests (workerd) read it.
 */
export const STUB_AGREEMENT = {
  calibration: "offline:stub/100",
  steps: [
    { from: 0, p: 0.25 },
    { from: 0.8, p: 0.75 },
  ],
};
