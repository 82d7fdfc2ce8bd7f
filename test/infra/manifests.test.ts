/**
 * The GPU functions' service manifests (infra/cloud-run/, infra/knative/), checked offline: YAML that parses cleanly
 * (no duplicate keys, no warnings), valid against the Knative Serving v1 schema (@kubernetes-models/knative), and the
 * project's own rules: a GPU limit; probes on the functions' real /readyz and /healthz; only variables the functions
 * read (gpu-worker/config.ts), with values they accept; concurrency equal to what a function admits; timeouts
 * consistent with the functions' and the edge's deadlines; the secret from the platform's store; only the small
 * function public; /metrics never on the exposed port; both functions of a platform on one image and one pack pair.
 */
import { readFileSync } from "node:fs";
import { Service } from "@kubernetes-models/knative/serving.knative.dev/v1";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { EnvSchema, loadConfig, type WorkerConfig } from "../../gpu-worker/config.js";
import { createLogger } from "../../gpu-worker/http/logger.js";
import { createLargeApp } from "../../gpu-worker/large-function/app.js";
import { createSmallApp } from "../../gpu-worker/small-function/app.js";
import { edgeVars } from "./wrangler-config.js";

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Probe {
  httpGet?: { path?: string; port?: number };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  failureThreshold?: number;
}
interface Container {
  image: string;
  ports?: { containerPort: number }[];
  env?: EnvVar[];
  resources?: { limits?: Record<string, string>; requests?: Record<string, string> };
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
}
interface Manifest {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    template: {
      metadata: { name: string; annotations: Record<string, string> };
      spec: { containerConcurrency: number; timeoutSeconds: number; containers: Container[] };
    };
    traffic: { revisionName?: string; percent?: number; tag?: string }[];
  };
}

const PLATFORMS = ["cloud-run", "knative"] as const;
/** Ports Knative Serving's queue-proxy sidecar takes in every pod (proxy, admin, metrics, profiling). */
const KNATIVE_RESERVED_PORTS = [8012, 8013, 8022, 8112, 9090, 9091];
type Platform = (typeof PLATFORMS)[number];
const ROLES = ["small", "large"] as const;

function load(platform: Platform, role: string): Manifest {
  const file = `infra/${platform}/stitch-${role}.yaml`;
  const docs = parseAllDocuments(readFileSync(file, "utf8"), { uniqueKeys: true, prettyErrors: true });
  if (!Array.isArray(docs) || docs.length !== 1) throw new Error(`${file}: expected one YAML document`);
  const doc = docs[0];
  if (!doc) throw new Error(`${file}: empty`);
  expect([...doc.errors, ...doc.warnings].map((e) => e.message)).toEqual([]);
  return doc.toJS() as Manifest;
}

const container = (m: Manifest) => m.spec.template.spec.containers[0] as Container;
const envOf = (m: Manifest) => Object.fromEntries((container(m).env ?? []).map((e) => [e.name, e]));
const annotation = (m: Manifest, names: string[]) =>
  names.map((n) => m.spec.template.metadata.annotations[n]).find(Boolean);
/** The function's configuration as the image runs it (infra/Dockerfile's ENV), secrets filled in. */
function configOf(m: Manifest): WorkerConfig {
  const env: Record<string, string> = { NODE_ENV: "production", HOST: "0.0.0.0", PORT: "8080" };
  for (const e of container(m).env ?? []) env[e.name] = e.value ?? "a-secret-from-the-platform-store";
  return loadConfig(env);
}

/** A function's apps as the manifest's config builds them, before its engines are loaded. */
function unloadedApp(role: "small" | "large", config: WorkerConfig) {
  const options = { config, logger: createLogger({ write: () => {} }), services: () => null, defaultMetrics: false };
  return role === "small" ? createSmallApp(options) : createLargeApp(options);
}

describe.each(PLATFORMS)("%s manifests", (platform) => {
  const manifests = Object.fromEntries(ROLES.map((r) => [r, load(platform, r)])) as Record<
    (typeof ROLES)[number],
    Manifest
  >;

  describe.each(ROLES)("stitch-%s", (role) => {
    const m = manifests[role];
    const c = container(m);

    it("is a valid Knative Serving v1 Service", () => {
      expect(() => new Service(m as never).validate()).not.toThrow();
      const broken = structuredClone(m) as unknown as { spec: { template: { spec: Record<string, unknown> } } };
      broken.spec.template.spec.containerConcurrency = "ten";
      expect(() => new Service(broken as never).validate()).toThrow(/containerConcurrency/);
      expect(m.metadata.name).toBe(`stitch-${role}`);
    });

    it("asks for one GPU and an unthrottled CPU", () => {
      expect(Number(c.resources?.limits?.["nvidia.com/gpu"])).toBeGreaterThanOrEqual(1);
      if (platform === "cloud-run") {
        expect(m.spec.template.metadata.annotations["run.googleapis.com/cpu-throttling"]).toBe("false");
      } else {
        // Kubernetes throttles a container only above its limit; requests = limits gives it the whole CPU.
        expect(c.resources?.requests?.cpu).toBe(c.resources?.limits?.cpu);
      }
    });

    it("reads only variables the function knows, with values it accepts, the secret from the store", () => {
      const known = Object.keys(EnvSchema.shape);
      for (const name of Object.keys(envOf(m))) expect(known).toContain(name);
      expect(envOf(m).STITCH_ROLE?.value).toBe(role);
      const secret = envOf(m).STITCH_SIGNING_SECRET;
      expect(secret?.value).toBeUndefined();
      expect(secret?.valueFrom?.secretKeyRef?.name).toBe("stitch-signing-secret");
      expect(envOf(m).STITCH_EXECUTION_PROVIDERS?.value?.split(",")[0]).toBe("cuda");
      expect(() => configOf(m)).not.toThrow();
    });

    it("admits exactly what the function admits", () => {
      const config = configOf(m);
      expect(m.spec.template.spec.containerConcurrency).toBe(config.maxConcurrency + config.maxQueue);
    });

    it("scales to zero, within a bound", () => {
      const min = annotation(m, ["autoscaling.knative.dev/minScale", "autoscaling.knative.dev/min-scale"]);
      const max = annotation(m, ["autoscaling.knative.dev/maxScale", "autoscaling.knative.dev/max-scale"]);
      expect(min).toBe("0");
      expect(Number(max)).toBeGreaterThanOrEqual(1);
    });

    it("probes the function's real readiness and health routes, on its port", async () => {
      expect(c.startupProbe?.httpGet?.path).toBe("/readyz");
      expect(c.livenessProbe?.httpGet?.path).toBe("/healthz");
      if (c.readinessProbe) expect(c.readinessProbe.httpGet?.path).toBe("/readyz");
      for (const probe of [c.startupProbe, c.livenessProbe]) {
        if (probe?.httpGet?.port !== undefined) expect(probe.httpGet.port).toBe(configOf(m).port);
      }
      expect(c.ports?.[0]?.containerPort).toBe(configOf(m).port);
      // The routes exist: before the engines load, /healthz is 200 and /readyz 503 (not 404).
      const config = configOf(m);
      const fn = unloadedApp(role, config);
      expect((await fn.app.request("/healthz")).status).toBe(200);
      expect((await fn.app.request("/readyz")).status).toBe(503);
    });

    it("keeps /metrics off the exposed port: its own loopback listener on a port the manifest does not declare", async () => {
      const config = configOf(m);
      expect(config.metricsHost).toBe("127.0.0.1");
      expect(config.metricsPort).not.toBe(config.port);
      expect((c.ports ?? []).map((p) => p.containerPort)).not.toContain(config.metricsPort);
      // Knative's queue-proxy shares the pod's network and listens on these: a metrics port among them cannot bind.
      expect(KNATIVE_RESERVED_PORTS).not.toContain(config.metricsPort);
      const fn = unloadedApp(role, config);
      expect((await fn.app.request("/metrics")).status).toBe(404);
      expect((await fn.metricsApp.request("/metrics")).status).toBe(200);
    });

    if (platform === "cloud-run") {
      it("gives the start-up at most Cloud Run's 240 s window", () => {
        const p = c.startupProbe as Probe;
        const window = (p.initialDelaySeconds ?? 0) + (p.periodSeconds ?? 10) * (p.failureThreshold ?? 3);
        expect(window).toBeLessThanOrEqual(240);
        expect(window).toBeGreaterThanOrEqual(120);
      });
    }

    it("lets the function's own deadline end a request before the platform does", () => {
      expect(m.spec.template.spec.timeoutSeconds * 1000).toBeGreaterThan(configOf(m).requestTimeoutMs);
    });

    it("names its revision and image after the pack pair it serves", () => {
      const tag = m.spec.traffic[0]?.tag as string;
      expect(m.spec.template.metadata.name).toBe(`stitch-${role}-${tag}`);
      expect(c.image.endsWith(`:${tag}`)).toBe(true);
      expect(m.spec.traffic).toEqual([{ revisionName: m.spec.template.metadata.name, percent: 100, tag }]);
    });
  });

  it("only the small function is public", () => {
    if (platform === "cloud-run") {
      expect(manifests.small.metadata.annotations?.["run.googleapis.com/ingress"]).toBe("all");
      expect(manifests.large.metadata.annotations?.["run.googleapis.com/ingress"]).toBe("internal");
    } else {
      expect(manifests.small.metadata.labels?.["networking.knative.dev/visibility"]).toBeUndefined();
      expect(manifests.large.metadata.labels?.["networking.knative.dev/visibility"]).toBe("cluster-local");
    }
  });

  it("both functions serve one pair: one image, the same packs, the small calling that pair's large revision", () => {
    const small = configOf(manifests.small);
    const large = configOf(manifests.large);
    expect(container(manifests.small).image).toBe(container(manifests.large).image);
    expect(small.smallPackDir).toBe(large.smallPackDir);
    expect(small.largePackDir).toBe(large.largePackDir);
    const tag = manifests.large.spec.traffic[0]?.tag as string;
    const host = new URL(small.largeUrl).hostname;
    expect(host.startsWith(platform === "cloud-run" ? `${tag}---stitch-large-` : `${tag}-stitch-large.`)).toBe(true);
  });

  it("deadlines nest: edge → small → large", () => {
    const small = configOf(manifests.small);
    // The platform must not cut the large call before the small function's deadline for it does.
    expect(manifests.large.spec.template.spec.timeoutSeconds * 1000).toBeGreaterThanOrEqual(small.largeTimeoutMs);
    for (const env of ["staging", "production"]) {
      const edgeTimeout = Number(edgeVars(env).SMALL_FUNCTION_TIMEOUT_MS);
      expect(manifests.small.spec.template.spec.timeoutSeconds * 1000).toBeLessThanOrEqual(edgeTimeout);
    }
  });
});
