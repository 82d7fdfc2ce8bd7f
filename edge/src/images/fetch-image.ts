/**
 * Fetches an `https:` image for the request: public hosts only (checked again
 * on every redirect), port 443, no credentials, a deadline over the whole
 * transfer, an image Content-Type, and at most `maxBytes` read.
 */

import { acceptedMediaType } from "../../../shared/image-bytes.js";
import {
  InvalidRequestError,
  PayloadTooLargeError,
  StitchError,
  UnsupportedMediaError,
} from "../../../shared/index.js";
import { readLimited } from "../../../shared/read-limited.js";
import { isPublicHost } from "./public-host.js";

export interface FetchImageOptions {
  maxBytes: number;
  timeoutMs: number;
  param: string;
  fetch?: typeof fetch;
}

const MAX_REDIRECTS = 3;

/** The URL if the edge may fetch it; a 400 saying why not otherwise. */
export function checkImageUrl(raw: string, param: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidRequestError("image_url is not a valid URL", "invalid_image_url", param);
  }
  if (url.protocol !== "https:") {
    throw new InvalidRequestError("Image URLs must be https: or data: URLs", "image_url_scheme", param);
  }
  const refuse = (why: string) => new InvalidRequestError(`Image URL refused: ${why}`, "image_url_refused", param);
  if (url.username || url.password) throw refuse("credentials in the URL");
  if (url.port !== "" && url.port !== "443") throw refuse("only the default https port is allowed");
  if (!isPublicHost(url.hostname)) throw refuse("the host is not a public address");
  return url;
}

export async function fetchImage(raw: string, options: FetchImageOptions): Promise<Uint8Array> {
  const { param, maxBytes } = options;
  const doFetch = options.fetch ?? fetch;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs);
  try {
    let url = checkImageUrl(raw, param);
    for (let hop = 0; ; hop++) {
      const response = await doFetch(url.toString(), {
        redirect: "manual",
        signal: controller.signal,
        headers: { accept: "image/png, image/jpeg, image/webp, image/gif" },
      });
      const location = response.headers.get("location");
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        if (hop >= MAX_REDIRECTS)
          throw new InvalidRequestError("Image URL redirects too often", "image_fetch_failed", param);
        url = checkImageUrl(new URL(location, url).toString(), param);
        continue;
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new InvalidRequestError(
          `Fetching the image failed with HTTP ${response.status}`,
          "image_fetch_failed",
          param,
        );
      }
      const declared = response.headers.get("content-type") ?? "";
      if (!acceptedMediaType(declared)) {
        await response.body?.cancel();
        throw new UnsupportedMediaError(
          `The image URL served '${declared || "no content type"}', not PNG, JPEG, WebP or GIF`,
          "unsupported_image_type",
          param,
        );
      }
      return await readImageBody(response, maxBytes, param);
    }
  } catch (err) {
    if (controller.signal.aborted) {
      throw new InvalidRequestError(
        `Fetching the image took longer than ${options.timeoutMs} ms`,
        "image_fetch_timeout",
        param,
      );
    }
    if (err instanceof StitchError) throw err;
    throw new InvalidRequestError("Fetching the image failed", "image_fetch_failed", param);
  } finally {
    clearTimeout(timer);
  }
}

async function readImageBody(response: Response, maxBytes: number, param: string): Promise<Uint8Array> {
  const tooLarge = () => new PayloadTooLargeError(`Image is larger than ${maxBytes} bytes`, "image_too_large", param);
  if (Number(response.headers.get("content-length")) > maxBytes) {
    await response.body?.cancel();
    throw tooLarge();
  }
  const bytes = await readLimited(response.body, maxBytes);
  if (!bytes) throw tooLarge();
  return bytes;
}
