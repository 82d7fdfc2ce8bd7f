import { describe, expect, it } from "vitest";
import {
  checkProviders,
  countNodes,
  ExecutionProviderError,
  isProvider,
  type ProviderReport,
  providerLoadError,
} from "./execution-providers.js";

const node = (provider: string) => ({ cat: "Node", args: { provider } });

describe("execution providers", () => {
  it("maps configured names to onnxruntime's", () => {
    expect(isProvider("cuda", "CUDAExecutionProvider")).toBe(true);
    expect(isProvider("cpu", "CPUExecutionProvider")).toBe(true);
    expect(isProvider("tensorrt", "TensorrtExecutionProvider")).toBe(true);
    expect(isProvider("cuda", "CPUExecutionProvider")).toBe(false);
  });

  it("counts profiled nodes per provider, ignoring session events", () => {
    const events = [{ cat: "Session", args: {} }, node("CUDAExecutionProvider"), node("CUDAExecutionProvider")];
    expect(countNodes([...events, node("CPUExecutionProvider")])).toEqual({
      CUDAExecutionProvider: 2,
      CPUExecutionProvider: 1,
    });
  });

  const report = (requested: string[], nodes: Record<string, number>, ran = true): ProviderReport => ({
    requested,
    graphs: [{ graph: "vision.onnx", ran, nodes }],
  });

  it("accepts a graph partly on the preferred provider (shape ops on the CPU are normal)", () => {
    expect(() =>
      checkProviders(report(["cuda", "cpu"], { CUDAExecutionProvider: 40, CPUExecutionProvider: 3 }), "small"),
    ).not.toThrow();
    expect(() => checkProviders(report(["cpu"], { CPUExecutionProvider: 9 }), "small")).not.toThrow();
    expect(() => checkProviders(report(["cuda"], {}, false), "small")).not.toThrow();
  });

  it("refuses a graph that fell back entirely to the CPU, saying what ran", () => {
    expect(() => checkProviders(report(["cuda", "cpu"], { CPUExecutionProvider: 43 }), "small model")).toThrow(
      new ExecutionProviderError(
        "small model: graph vision.onnx ran no node on the requested execution provider cuda " +
          "(43 on CPUExecutionProvider); refusing to serve on a fallback provider",
      ),
    );
  });

  it("names the providers when a session cannot be created with them, and leaves CPU-only errors alone", () => {
    const cause = new Error("OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library");
    const err = providerLoadError("/p/vision.onnx", ["cuda", "cpu"], cause);
    expect(err).toBeInstanceOf(ExecutionProviderError);
    expect(err.message).toMatch(/^could not create a session for \/p\/vision.onnx with execution providers cuda,cpu: /);
    expect(err.cause).toBe(cause);
    expect(providerLoadError("/p/vision.onnx", ["cpu"], cause)).toBe(cause);
  });
});
