/**
 * One function process: listens at once (so /healthz answers during model
 * load), loads the engines of its role in the background and turns ready when
 * they are warm; `close` drains in-flight requests before letting go.
 */
import type { Server } from "node:http";
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

  const server = await listen(fn, config);
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`;
  logger.info("listening", { url });

  const ready = loadServices(config, logger).then((loaded) => {
    services = loaded;
    logger.info("ready");
  });
  ready.catch(() => {}); // the owner awaits `ready`; an unobserved copy must not crash the process

  return {
    url,
    port,
    fn,
    ready,
    async close() {
      draining = true;
      server.close();
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

function listen(fn: FunctionApp, config: WorkerConfig): Promise<Server> {
  return new Promise((resolve, reject) => {
    // Without createServer options, serve() makes a plain node:http server.
    const server = serve({ fetch: fn.app.fetch, hostname: config.host, port: config.port }) as Server;
    // Keep idle sockets open longer than any caller's pool keeps them (undici: 4 s; workerd: longer than Node's
    // 5 s default), so a caller never sends a request on a socket the server is closing: under overload that
    // race surfaced as connection errors, i.e. 502s instead of 503s.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    server.once("listening", () => resolve(server));
    server.once("error", reject);
  });
}
