/**
 * The hand-written `Env` (edge/src/bindings.ts) against the bindings wrangler.toml declares in every environment, as
 * `wrangler types` generates them into edge/worker-configuration.d.ts (git-ignored; `npm run types:edge` writes and
 * checks it): a binding added to the config but not typed, or typed differently, fails `tsc -p edge/tsconfig.bindings.json`.
 */
import type { Env } from "./src/bindings.js";

type Generated = Cloudflare.Env;
type Untyped = Exclude<keyof Generated, keyof Env>;

export const everyBindingTyped: [Untyped] extends [never] ? true : { untyped: Untyped } = true;
export const typesAgree = (generated: Generated): Pick<Env, keyof Generated & keyof Env> => generated;
export const required: ("DB" | "ACCOUNTS" | "LEDGER")[] = ["DB", "ACCOUNTS", "LEDGER"] satisfies (keyof Generated)[];
