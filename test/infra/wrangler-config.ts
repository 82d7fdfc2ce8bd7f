/** wrangler.toml, parsed (smol-toml), for the checks of the deployed environments. */
import { readFileSync } from "node:fs";
import { parse } from "smol-toml";

export interface WranglerEnv {
  name?: string;
  workers_dev?: boolean;
  routes?: { pattern: string; custom_domain?: boolean }[];
  d1_databases?: { binding: string; database_name: string; database_id: string; migrations_dir?: string }[];
  durable_objects?: { bindings: { name: string; class_name: string }[] };
  vars?: Record<string, string>;
}

export const wrangler = parse(readFileSync("wrangler.toml", "utf8")) as WranglerEnv & {
  env?: Record<string, WranglerEnv>;
};

export const DEPLOYED = ["staging", "production"] as const;

export function edgeEnv(name: string): WranglerEnv {
  const env = wrangler.env?.[name];
  if (!env) throw new Error(`wrangler.toml has no [env.${name}]`);
  return env;
}

export const edgeVars = (name: string): Record<string, string> => edgeEnv(name).vars ?? {};
