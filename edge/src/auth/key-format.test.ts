import { describe, expect, it } from "vitest";
import { sha256Hex } from "../util/sha256.js";
import { bearerToken, generateKey, keyIdOf } from "./key-format.js";

const ID = "0123456789abcdef";
const SECRET = "a".repeat(48);
const KEY = `sk-stitch-${ID}-${SECRET}`;

describe("keyIdOf", () => {
  it("reads the public id out of a well-formed key", () => {
    expect(keyIdOf(KEY)).toBe(ID);
  });
  it.each([
    ["an OpenAI key", "sk-proj-abc"],
    ["upper-case hex", `sk-stitch-${ID.toUpperCase()}-${SECRET}`],
    ["a short secret", `sk-stitch-${ID}-${"a".repeat(47)}`],
    ["a long secret", `${KEY}a`],
    ["a key with a trailing newline", `${KEY}\n`],
    ["an empty string", ""],
  ])("is null for %s", (_what, key) => {
    expect(keyIdOf(key)).toBeNull();
  });
});

describe("bearerToken", () => {
  it.each([
    ["Bearer tok", "tok"],
    ["bearer tok", "tok"],
    ["BEARER   tok  ", "tok"],
  ])("reads %j", (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });
  it.each([["Basic dXNlcjpwYXNz"], ["Bearer"], ["Bearer a b"], ["tok"], [""]])("refuses %j", (header) => {
    expect(bearerToken(header)).toBeNull();
  });
  it("refuses a missing header", () => {
    expect(bearerToken(undefined)).toBeNull();
  });
});

describe("generateKey", () => {
  it("makes a key of the pattern, with its id and the hash of the whole key (never the key itself)", async () => {
    const fresh = await generateKey();
    expect(keyIdOf(fresh.key)).toBe(fresh.id);
    expect(fresh.hash).toBe(await sha256Hex(fresh.key));
    expect(fresh.hash).not.toContain(fresh.key.slice(-48));
  });
  it("makes a different secret each time", async () => {
    const [a, b] = await Promise.all([generateKey(), generateKey()]);
    expect(a.key).not.toBe(b.key);
    expect(a.id).not.toBe(b.id);
  });
  it("registers a given key as is", async () => {
    expect(await generateKey(KEY)).toEqual({ id: ID, key: KEY, hash: await sha256Hex(KEY) });
  });
});
