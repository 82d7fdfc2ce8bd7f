import { InvalidRequestError, PayloadTooLargeError } from "../../../shared/index.js";
import { readLimited } from "../util/read-limited.js";

const tooLarge = (max: number) =>
  new PayloadTooLargeError(`Request body is larger than ${max} bytes`, "body_too_large");

/** The body's bytes, refusing more than `maxBytes` whether or not Content-Length tells the truth. */
export async function readBody(request: Request, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const body = await readLimited(request.body, maxBytes);
  if (!body) throw tooLarge(maxBytes);
  return body;
}

export function parseJson(body: Uint8Array): unknown {
  if (body.byteLength === 0) throw new InvalidRequestError("Request body is empty; expected JSON", "invalid_json");
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body));
  } catch {
    throw new InvalidRequestError("Request body is not valid JSON", "invalid_json");
  }
}
