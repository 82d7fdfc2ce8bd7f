import { UnsupportedMediaError } from "../../../shared/index.js";

/**
 * The body must be declared JSON (`application/json`, any parameters, any case): a body sent as text/plain or a
 * form is refused with a 415 rather than parsed as JSON anyway and billed (found by the fuzzer, issue 16).
 */
export function requireJsonContentType(header: string | undefined): void {
  const type = header?.split(";")[0]?.trim().toLowerCase();
  if (type === "application/json") return;
  throw new UnsupportedMediaError("Content-Type must be application/json", "unsupported_content_type", "Content-Type");
}
