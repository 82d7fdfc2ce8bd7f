/**
 * One pass of bench:shadow's stream through the real local stack (edge under `wrangler dev` with local D1, the
 * small and the large function): every item asked in order as a client would (chat completions, stitch-sgl, the
 * answer cache bypassed), `connections` at a time, and what each answer reported kept. Then the edge's shadow
 * report (GET /admin/shadow) once the ledger has settled.
 */

import { chatAboutPng } from "./serve-requests.js";
import { createKey, type Stack, settledUsage, startStack } from "./serve-stack.js";
import type { StreamItem } from "./shadow-offline.js";

export interface Answered {
  index: number;
  path: string;
  answer: string;
  decision: number | null;
  threshold: number | null;
  calibration: string | null;
  agreement: number | null;
  /** Which fit gave `agreement`: the edge's shadow samples (`shadow:…`) or the small function's offline one. */
  agreementCalibration: string | null;
  largeMs: number;
}

export interface RunSettings {
  /** The small function's own threshold (its offline calibration). */
  offlineThreshold: number;
  /** Shadow escalation: off when rate is 0 or target unset. */
  shadow?: { target: number; rate: number; minSamples: number; window: number; step: number };
  connections: number;
}

export interface RunResult {
  answered: Answered[];
  report: ShadowReportBody;
  seconds: number;
}

/** The fields of GET /admin/shadow the bench reads. */
export interface ShadowReportBody {
  samples: number;
  threshold: number | null;
  calibration: string;
  shadow_cost: { samples: number; accelerator_ms_large: number; share_of_large: number | null };
  exits: { small: number; large: number; rate: number | null };
}

export async function runStream(
  items: StreamItem[],
  settings: RunSettings,
  log: (line: string) => void,
): Promise<RunResult> {
  const shadow = settings.shadow;
  const stack = await startStack(log, {
    edgeVars: shadow
      ? {
          SHADOW_TARGET: String(shadow.target),
          SHADOW_MIN_SAMPLES: String(shadow.minSamples),
          SHADOW_WINDOW: String(shadow.window),
          SHADOW_STEP: String(shadow.step),
          // Each isolate recomputes the curve at most once a second: the stream runs at tens of requests a second.
          SHADOW_REFRESH_MS: "1000",
        }
      : {},
    functionEnv: {
      small: {
        STITCH_EXIT_THRESHOLD: String(Math.min(1, settings.offlineThreshold)),
        STITCH_SHADOW_RATE: String(shadow?.rate ?? 0),
        STITCH_MAX_QUEUE: "64",
      },
      large: { STITCH_MAX_QUEUE: "64" },
    },
  });
  try {
    const { key } = await createKey(stack, "bench-shadow");
    const started = performance.now();
    const answered: Answered[] = new Array(items.length);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const i = next++;
        const item = items[i] as StreamItem;
        answered[i] = await ask(stack, key, item);
        if ((i + 1) % 500 === 0) log(`[bench] ${i + 1}/${items.length}`);
      }
    };
    await Promise.all(Array.from({ length: settings.connections }, worker));
    const seconds = (performance.now() - started) / 1000;
    await settledUsage(stack, key, 60_000, 4_000);
    return { answered, report: await shadowReport(stack), seconds };
  } finally {
    await stack.stop();
  }
}

async function ask(stack: Stack, key: string, item: StreamItem): Promise<Answered> {
  const res = await fetch(`${stack.edgeUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: chatAboutPng(item.png, item.question, { stitch: { cache: { bypass: true } } }),
  });
  const body = (await res.json()) as {
    choices?: { message: { content: string } }[];
    stitch?: {
      path: string;
      decision_score: number | null;
      exit_threshold?: number | null;
      exit_calibration?: string | null;
      agreement_probability?: number | null;
      agreement_calibration?: string | null;
      accelerator_ms: { large: number };
    };
  };
  if (res.status !== 200 || !body.stitch || !body.choices?.[0]) {
    throw new Error(`item ${item.index}: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  }
  return {
    index: item.index,
    path: body.stitch.path,
    answer: body.choices[0].message.content,
    decision: body.stitch.decision_score,
    threshold: body.stitch.exit_threshold ?? null,
    calibration: body.stitch.exit_calibration ?? null,
    agreement: body.stitch.agreement_probability ?? null,
    agreementCalibration: body.stitch.agreement_calibration ?? null,
    largeMs: body.stitch.accelerator_ms.large,
  };
}

async function shadowReport(stack: Stack): Promise<ShadowReportBody> {
  const res = await fetch(`${stack.edgeUrl}/admin/shadow`, {
    headers: { authorization: `Bearer ${stack.adminSecret}` },
  });
  if (!res.ok) throw new Error(`GET /admin/shadow: ${res.status}`);
  return (await res.json()) as ShadowReportBody;
}
