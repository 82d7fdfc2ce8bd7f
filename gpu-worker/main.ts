/**
 * Entry point of a GPU function process: `STITCH_ROLE=small|large|both tsx gpu-worker/main.ts`.
 * Exits 1 on bad configuration or when the engines cannot load (e.g. a mismatched
 * pack pair); drains and exits 0 on SIGTERM/SIGINT.
 */
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./http/logger.js";
import { startWorker } from "./start-worker.js";

const logger = createLogger();

async function main(): Promise<void> {
  const config = loadConfig();
  const worker = await startWorker(config, { logger });
  worker.ready.catch((err: unknown) => {
    logger.error("engines failed to load; exiting", { error: err });
    process.exit(1);
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn("second signal; exiting without draining", { signal });
      process.exit(1);
    }
    stopping = true;
    logger.info("shutting down", { signal });
    worker.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error("shutdown failed", { error: err });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) logger.error(err.message);
  else logger.error("start-up failed", { error: err });
  process.exit(1);
});
