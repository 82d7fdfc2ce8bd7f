import { describe, expect, it } from "vitest";
import type { StitchError } from "../../../shared/index.js";
import { requireJsonContentType } from "./content-type.js";

describe("requireJsonContentType", () => {
  it.each(["application/json", "application/json; charset=utf-8", "Application/JSON", " application/json ;x=y"])(
    "accepts %j",
    (type) => {
      expect(() => requireJsonContentType(type)).not.toThrow();
    },
  );
  it.each([undefined, "", "text/plain", "application/x-www-form-urlencoded", "application/json-patch+json"])(
    "refuses %j with 415",
    (type) => {
      try {
        requireJsonContentType(type);
        expect.unreachable();
      } catch (err) {
        expect([(err as StitchError).status, (err as StitchError).code]).toEqual([415, "unsupported_content_type"]);
      }
    },
  );
});
