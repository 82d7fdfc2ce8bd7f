/**
 * One function process: listens at once (so /healthz answers during model
 * load), loads the engines of its role in the background and turns ready when
 * they are warm; `close` drains in-flight requests before letting go. /metrics
 * is served by a second listener (METRICS_HOST:METRICS_PORT, loopback by
 * default), so the work port, the one the platform exposes, never serves it.
 */
import type { Server, ServerOptions } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { WorkerConfig } from "./config.js";
import type { FunctionApp } from "./http/function-app.js";
import { createLogger, type Logger } from "./http/logger.js";
import { createLargeApp } from "./large-function/app.js";
import { type LoadedServices, loadServices } from "./load-engines.js";
import { createSmallApp } from "./small-function/app.js";

export interface RunningWorker {
  url: string;
  port: number;
  /** Base URL of the metrics listener (GET /metrics). */
  metricsUrl: string;
  fn: FunctionApp;
  /** Resolves when the engines are loaded and warmed up; rejects if they cannot be (bad packs, mismatched pair). */
  ready: Promise<void>;
  /** Stops accepting, waits for in-flight requests (at most the request timeout), releases the engines' clients. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  defaultMetrics?: boolean;
}

export async function startWorker(config: WorkerConfig, options: StartOptions = {}): Promise<RunningWorker> {
  const logger = (options.logger ?? createLogger()).child({ role: config.role });
  let services: LoadedServices | null = null;
  let draining = false;
  const live = () => (draining ? null : services);
  const common = {
    config,
    logger,
    visionCaches: () => services?.visionCaches() ?? {},
    defaultMetrics: options.defaultMetrics,
  };
  const fn =
    config.role === "large"
      ? createLargeApp({ ...common, services: () => live()?.large ?? null })
      : createSmallApp({ ...common, services: () => live()?.answer ?? null });

  fn.metrics.trackProviders(() => services?.providers ?? {});

  const server = await listen(fn.app.fetch, config.host, config.port, workServerOptions(config));
  const port = (server.address() as AddressInfo).port;
  const url = baseUrl(config.host, port);
  let metricsServer: Server;
  try {
    metricsServer = await listen(fn.metricsApp.fetch, config.metricsHost, config.metricsPort, {});
  } catch (err) {
    server.close();
    throw err;
  }
  const metricsUrl = baseUrl(config.metricsHost, (metricsServer.address() as AddressInfo).port);
  logger.info("listening", { url, metrics: metricsUrl });

  const ready = loadServices(config, logger, {
    countShadow: (outcome) => fn.metrics.shadows.inc({ outcome }),
    // In process (role both) the large model shares this function's accelerator, so its gate: idle slots only.
    shadowSlot: (preempt) => fn.gate.acquireShadow(preempt),
  }).then((loaded) => {
    services = loaded;
    logger.info("ready");
  });
  ready.catch(() => {}); // the owner awaits `ready`; an unobserved copy must not crash the process

  return {
    url,
    port,
    metricsUrl,
    fn,
    ready,
    async close() {
      draining = true;
      server.close();
      metricsServer.close();
      metricsServer.closeAllConnections();
      server.closeIdleConnections();
      const until = Date.now() + config.requestTimeoutMs;
      while ((fn.active() > 0 || fn.gate.inFlight > 0) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 50));
      }
      server.closeAllConnections();
      await services?.close();
      logger.info("closed");
    },
  };
}

type FetchHandler = Parameters<typeof serve>[0]["fetch"];

const baseUrl = (host: string, port: number) => `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

/**
 * Node's own limits on the work port, below the handlers' deadline checks: headers must arrive within 10 s, and a
 * whole request (body included) within the request timeout plus a margin. The signed route ends a slow body at
 * its deadline itself (408, read-signed-body.ts); these catch what never reaches it (a half-sent header block, a
 * slow unsigned upload to any path), checked every second instead of Node's default 30 s.
 */
function workServerOptions(config: WorkerConfig): ServerOptions {
  const requestTimeout = config.requestTimeoutMs + REQUEST_TIMEOUT_MARGIN_MS;
  // Node refuses a headers timeout longer than the request timeout.
  return {
    headersTimeout: Math.min(HEADERS_TIMEOUT_MS, requestTimeout),
    requestTimeout,
    connectionsCheckingInterval: 1000,
  };
}
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MARGIN_MS = 5_000;

function listen(fetch: FetchHandler, hostname: string, port: number, serverOptions: ServerOptions): Promise<Server> {
  return new Promise((resolve, reject) => {
    // Without createServer options, serve() makes a plain node:http server.
    const server = serve({ fetch, hostname, port, serverOptions }) as Server;
    // Keep idle sockets open longer than any caller's pool keeps them (undici: 4 s; workerd: longer than Node's
    // 5 s default), so a caller never sends a request on a socket the server is closing: under overload that
    // race surfaced as connection errors, i.e. 502s instead of 503s. Idle keep-alive sockets are not subject to
    // headersTimeout or requestTimeout, which time only a request in progress.
    server.keepAliveTimeout = 65_000;
    server.once("listening", () => resolve(server));
    server.once("error", reject);
  });
}
