import { describe, expect, it } from "vitest";
import { DEADLINE_HEADER } from "./deadline.js";
import { AuthenticationError } from "./errors.js";
import {
  BODY_SHA256_HEADER,
  bodySha256,
  constantTimeEqual,
  REQUEST_ID_HEADER,
  ReplayGuard,
  SIGNATURE_HEADER,
  type SignedParts,
  signRequest,
  TIMESTAMP_HEADER,
  verifyBodyHash,
  verifyRequest,
  verifySignedHeaders,
} from "./sign-request.js";

const SECRET = "test-secret-0123456789";
const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const WINDOW = 30;
const parts: SignedParts = {
  method: "POST",
  path: "/v1/answer",
  requestId: "req-1",
  body: JSON.stringify({ question: "what colour is the circle ?" }),
  deadline: NOW + 25_000,
};
const options = { windowSeconds: WINDOW, now: NOW };

/** The request as a function receives it: method, path, and the headers the signer sent (some possibly changed). */
function received(headers: Record<string, string | undefined>, over: Partial<{ method: string; path: string }> = {}) {
  return { method: "POST", path: parts.path, header: (name: string) => headers[name], ...over };
}

async function signed(overrides: Partial<SignedParts> = {}, now = NOW) {
  return signRequest(SECRET, { ...parts, ...overrides }, now);
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
  it("emits timestamp (seconds), hex signature, request id, the body's SHA-256 and the deadline", async () => {
    const headers = await signed();
    expect(headers[TIMESTAMP_HEADER]).toBe(String(NOW / 1000));
    expect(headers[SIGNATURE_HEADER]).toMatch(/^[0-9a-f]{64}$/);
    expect(headers[REQUEST_ID_HEADER]).toBe("req-1");
    expect(headers[BODY_SHA256_HEADER]).toBe(await bodySha256(parts.body));
    expect(headers[DEADLINE_HEADER]).toBe(String(NOW + 25_000));
  });

  it("sends no deadline header without a deadline", async () => {
    expect(await signed({ deadline: undefined })).not.toHaveProperty(DEADLINE_HEADER);
  });

  it("signs string and byte bodies alike", async () => {
    const fromBytes = await signed({ body: new TextEncoder().encode(parts.body as string) });
    expect(fromBytes).toEqual(await signed());
  });
});

describe("verifySignedHeaders: the signature from the headers alone", () => {
  it("accepts a fresh signature and returns the signed body hash", async () => {
    const headers = await signed();
    await expect(verifySignedHeaders(SECRET, received(headers), options)).resolves.toBe(headers[BODY_SHA256_HEADER]);
  });

  it("accepts a signature made without a deadline when none is sent", async () => {
    const headers = await signed({ deadline: undefined });
    await expect(verifySignedHeaders(SECRET, received(headers), options)).resolves.toMatch(/^[0-9a-f]{64}$/);
  });

  it("treats the method case-insensitively", async () => {
    const headers = await signed({ method: "post" });
    await expect(verifySignedHeaders(SECRET, received(headers), options)).resolves.toBeTypeOf("string");
  });

  it("accepts clock skew inside the window either way", async () => {
    await verifySignedHeaders(SECRET, received(await signed({}, NOW - WINDOW * 1000)), options);
    await verifySignedHeaders(SECRET, received(await signed({}, NOW + WINDOW * 1000)), options);
  });

  it("rejects a wrong key", async () => {
    const code = await authErrorCode(verifySignedHeaders("other-secret", received(await signed()), options));
    expect(code).toBe("signature_invalid");
  });

  it.each([
    ["body hash", { [BODY_SHA256_HEADER]: "0".repeat(64) }],
    ["request id", { [REQUEST_ID_HEADER]: "req-2" }],
    ["deadline (extended)", { [DEADLINE_HEADER]: String(NOW + 600_000) }],
    ["deadline (removed)", { [DEADLINE_HEADER]: undefined }],
    ["body hash (not hex)", { [BODY_SHA256_HEADER]: "not a hash" }],
  ])("rejects a changed %s header", async (_, change) => {
    const headers = { ...(await signed()), ...change };
    const code = await authErrorCode(verifySignedHeaders(SECRET, received(headers), options));
    expect(code).toBe("signature_invalid");
  });

  it.each([
    ["path", { path: "/v1/escalate" }],
    ["method", { method: "PUT" }],
  ])("rejects a request re-aimed at another %s", async (_, change) => {
    const code = await authErrorCode(verifySignedHeaders(SECRET, received(await signed(), change), options));
    expect(code).toBe("signature_invalid");
  });

  it("rejects a tampered signature", async () => {
    const headers = await signed();
    const sig = headers[SIGNATURE_HEADER] ?? "";
    const flipped = `${sig.slice(0, -1)}${sig.endsWith("0") ? "1" : "0"}`;
    const code = await authErrorCode(
      verifySignedHeaders(SECRET, received({ ...headers, [SIGNATURE_HEADER]: flipped }), options),
    );
    expect(code).toBe("signature_invalid");
  });

  it("rejects an expired timestamp", async () => {
    const headers = await signed({}, NOW - (WINDOW + 1) * 1000);
    expect(await authErrorCode(verifySignedHeaders(SECRET, received(headers), options))).toBe("signature_expired");
  });

  it("rejects a timestamp from the future", async () => {
    const headers = await signed({}, NOW + (WINDOW + 1) * 1000);
    expect(await authErrorCode(verifySignedHeaders(SECRET, received(headers), options))).toBe("signature_expired");
  });

  it.each(["abc", "1.5", ""])("rejects the non-integer timestamp %j", async (timestamp) => {
    const headers = { ...(await signed()), [TIMESTAMP_HEADER]: timestamp };
    const code = await authErrorCode(verifySignedHeaders(SECRET, received(headers), options));
    expect(code).toBe(timestamp === "" ? "signature_missing" : "signature_expired");
  });

  it.each([
    ["timestamp", [TIMESTAMP_HEADER]],
    ["signature", [SIGNATURE_HEADER]],
    ["body hash", [BODY_SHA256_HEADER]],
    ["all three", [TIMESTAMP_HEADER, SIGNATURE_HEADER, BODY_SHA256_HEADER]],
  ])("rejects a missing %s header", async (_, missing) => {
    const headers: Record<string, string | undefined> = { ...(await signed()) };
    for (const name of missing) headers[name] = undefined;
    expect(await authErrorCode(verifySignedHeaders(SECRET, received(headers), options))).toBe("signature_missing");
  });

  it("rejects an exact replay within the window", async () => {
    const headers = await signed();
    const seen = new ReplayGuard();
    await verifySignedHeaders(SECRET, received(headers), { ...options, seen });
    const code = await authErrorCode(
      verifySignedHeaders(SECRET, received(headers), { ...options, now: NOW + 5_000, seen }),
    );
    expect(code).toBe("signature_replayed");
  });

  it("does not record a signature that failed verification", async () => {
    const seen = new ReplayGuard();
    const headers = await signed();
    await authErrorCode(verifySignedHeaders("other-secret", received(headers), { ...options, seen }));
    await verifySignedHeaders(SECRET, received(headers), { ...options, seen });
  });
});

describe("verifyBodyHash and verifyRequest: the body, once read", () => {
  it("accepts the signed body and refuses any other", async () => {
    const hash = (await signed())[BODY_SHA256_HEADER] ?? "";
    await expect(verifyBodyHash(parts.body, hash)).resolves.toBe(undefined);
    const code = await authErrorCode(verifyBodyHash(`${parts.body} `, hash));
    expect(code).toBe("signature_body_mismatch");
  });

  it("verifyRequest checks headers and body together", async () => {
    const headers = await signed();
    await expect(verifyRequest(SECRET, { ...received(headers), body: parts.body }, options)).resolves.toBe(undefined);
    const code = await authErrorCode(verifyRequest(SECRET, { ...received(headers), body: "{}" }, options));
    expect(code).toBe("signature_body_mismatch");
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
