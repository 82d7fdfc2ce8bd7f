/** Server-sent events from the small function: the shared parser (shared/server-sent-events.ts). */
export { readEvents as readSse, type SseEvent } from "../../../shared/server-sent-events.js";
