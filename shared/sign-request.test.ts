import { describe, expect, it } from "vitest";
import { AuthenticationError } from "./errors.js";
import {
  constantTimeEqual,
  REQUEST_ID_HEADER,
  ReplayGuard,
  SIGNATURE_HEADER,
  type SignedParts,
  signRequest,
  TIMESTAMP_HEADER,
  verifyRequest,
} from "./sign-request.js";

const SECRET = "test-secret-0123456789";
const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const WINDOW = 30;
const parts: SignedParts = {
  method: "POST",
  path: "/v1/answer",
  requestId: "req-1",
  body: JSON.stringify({ question: "what colour is the circle ?" }),
};

async function signed(overrides: Partial<SignedParts> = {}, now = NOW) {
  const headers = await signRequest(SECRET, { ...parts, ...overrides }, now);
  return { timestamp: headers[TIMESTAMP_HEADER], signature: headers[SIGNATURE_HEADER] };
}

/** Resolves to the AuthenticationError code the promise rejects with. */
async function authErrorCode(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AuthenticationError);
  return (error as AuthenticationError).code;
}

describe("signRequest", () => {
  it("emits timestamp (seconds), hex signature and request id", async () => {
    const headers = await signRequest(SECRET, parts, NOW);
    expect(headers[TIMESTAMP_HEADER]).toBe(String(NOW / 1000));
    expect(headers[SIGNATURE_HEADER]).toMatch(/^[0-9a-f]{64}$/);
    expect(headers[REQUEST_ID_HEADER]).toBe("req-1");
  });

  it("signs string and byte bodies alike", async () => {
    const fromBytes = await signed({ body: new TextEncoder().encode(parts.body as string) });
    expect(fromBytes).toEqual(await signed());
  });
});

describe("verifyRequest", () => {
  it("accepts a fresh signature of the same parts", async () => {
    await expect(verifyRequest(SECRET, parts, await signed(), { windowSeconds: WINDOW, now: NOW })).resolves.toBe(
      undefined,
    );
  });

  it("treats the method case-insensitively", async () => {
    const headers = await signed({ method: "post" });
    await expect(verifyRequest(SECRET, parts, headers, { windowSeconds: WINDOW, now: NOW })).resolves.toBe(undefined);
  });

  it("accepts clock skew inside the window either way", async () => {
    const options = { windowSeconds: WINDOW };
    await verifyRequest(SECRET, parts, await signed({}, NOW - WINDOW * 1000), { ...options, now: NOW });
    await verifyRequest(SECRET, parts, await signed({}, NOW + WINDOW * 1000), { ...options, now: NOW });
  });

  it("rejects a wrong key", async () => {
    const headers = await signed();
    const code = await authErrorCode(
      verifyRequest("other-secret", parts, headers, { windowSeconds: WINDOW, now: NOW }),
    );
    expect(code).toBe("signature_invalid");
  });

  it.each([
    ["body", { body: `${parts.body} ` }],
    ["path", { path: "/v1/escalate" }],
    ["method", { method: "PUT" }],
    ["request id", { requestId: "req-2" }],
  ])("rejects a changed %s", async (_, change) => {
    const headers = await signed();
    const code = await authErrorCode(
      verifyRequest(SECRET, { ...parts, ...change }, headers, { windowSeconds: WINDOW, now: NOW }),
    );
    expect(code).toBe("signature_invalid");
  });

  it("rejects a tampered signature", async () => {
    const headers = await signed();
    const flipped = `${headers.signature?.slice(0, -1)}${headers.signature?.endsWith("0") ? "1" : "0"}`;
    const code = await authErrorCode(
      verifyRequest(SECRET, parts, { ...headers, signature: flipped }, { windowSeconds: WINDOW, now: NOW }),
    );
    expect(code).toBe("signature_invalid");
  });

  it("rejects an expired timestamp", async () => {
    const headers = await signed({}, NOW - (WINDOW + 1) * 1000);
    const code = await authErrorCode(verifyRequest(SECRET, parts, headers, { windowSeconds: WINDOW, now: NOW }));
    expect(code).toBe("signature_expired");
  });

  it("rejects a timestamp from the future", async () => {
    const headers = await signed({}, NOW + (WINDOW + 1) * 1000);
    const code = await authErrorCode(verifyRequest(SECRET, parts, headers, { windowSeconds: WINDOW, now: NOW }));
    expect(code).toBe("signature_expired");
  });

  it.each(["abc", "1.5", ""])("rejects the non-integer timestamp %j", async (timestamp) => {
    const headers = { ...(await signed()), timestamp };
    const code = await authErrorCode(verifyRequest(SECRET, parts, headers, { windowSeconds: WINDOW, now: NOW }));
    expect(code).toBe(timestamp === "" ? "signature_missing" : "signature_expired");
  });

  it.each([
    ["timestamp", { timestamp: undefined }],
    ["signature", { signature: null }],
    ["both", { timestamp: null, signature: undefined }],
  ])("rejects a missing %s header", async (_, missing) => {
    const headers = { ...(await signed()), ...missing };
    const code = await authErrorCode(verifyRequest(SECRET, parts, headers, { windowSeconds: WINDOW, now: NOW }));
    expect(code).toBe("signature_missing");
  });

  it("rejects an exact replay within the window", async () => {
    const headers = await signed();
    const options = { windowSeconds: WINDOW, now: NOW, seen: new ReplayGuard() };
    await verifyRequest(SECRET, parts, headers, options);
    const code = await authErrorCode(verifyRequest(SECRET, parts, headers, { ...options, now: NOW + 5_000 }));
    expect(code).toBe("signature_replayed");
  });

  it("does not record a signature that failed verification", async () => {
    const seen = new ReplayGuard();
    const headers = await signed();
    await authErrorCode(verifyRequest("other-secret", parts, headers, { windowSeconds: WINDOW, now: NOW, seen }));
    await verifyRequest(SECRET, parts, headers, { windowSeconds: WINDOW, now: NOW, seen });
  });
});

describe("ReplayGuard", () => {
  it("forgets signatures once they expire", () => {
    const guard = new ReplayGuard();
    expect(guard.remember("sig", 100, 50)).toBe(true);
    expect(guard.remember("sig", 100, 100)).toBe(false);
    expect(guard.remember("sig", 200, 101)).toBe(true);
  });

  it("stays bounded, evicting expired entries first, then the oldest", () => {
    const guard = new ReplayGuard(2);
    expect(guard.remember("a", 10, 0)).toBe(true);
    expect(guard.remember("b", 100, 0)).toBe(true);
    // Full at t=20: "a" has expired and goes; "b" stays and is still a replay.
    expect(guard.remember("c", 100, 20)).toBe(true);
    expect(guard.remember("b", 100, 20)).toBe(false);
    // Full of live entries: the oldest ("b") is dropped to make room.
    expect(guard.remember("d", 100, 20)).toBe(true);
    expect(guard.remember("c", 100, 20)).toBe(false);
    expect(guard.remember("b", 100, 20)).toBe(true);
  });
});

describe("constantTimeEqual", () => {
  it("compares content and length", () => {
    expect(constantTimeEqual("abc", "abc")).toBe(true);
    expect(constantTimeEqual("abc", "abd")).toBe(false);
    expect(constantTimeEqual("abc", "abcd")).toBe(false);
    expect(constantTimeEqual("", "")).toBe(true);
  });
});
