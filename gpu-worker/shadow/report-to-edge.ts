/**
 * Sends a shadow sample to the edge (POST /internal/shadow-samples), signed with the functions' shared secret as
 * the edge signs its calls here, bounded by a short timeout: a sample that cannot be delivered is dropped.
 */
import { SHADOW_SAMPLES_PATH, type ShadowSample, signRequest } from "../../shared/index.js";

const REPORT_TIMEOUT_MS = 5000;

export function reportToEdge(edgeUrl: string, secret: string): (sample: ShadowSample) => Promise<void> {
  const url = new URL(SHADOW_SAMPLES_PATH, edgeUrl);
  return async function report(sample) {
    const body = JSON.stringify(sample);
    const signed = await signRequest(secret, {
      method: "POST",
      path: url.pathname,
      requestId: sample.request_id,
      body,
    });
    const res = await fetch(url, {
      method: "POST",
      headers: { ...signed, "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(REPORT_TIMEOUT_MS),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`the edge refused the shadow sample: ${res.status}`);
  };
}
