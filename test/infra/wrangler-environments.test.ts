/**
 * wrangler.toml's deployed environments: each with its own D1 database, Durable Object binding, vars and custom
 * domain, written out in full (wrangler inherits none of these into an environment, so a missing one would be a
 * silent gap, not a fallback). `wrangler deploy --dry-run --env X` and `wrangler types --check` run in .ci/run.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { DEPLOYED, edgeEnv, wrangler } from "./wrangler-config.js";

describe("wrangler.toml environments", () => {
  it.each(DEPLOYED)(
    "%s has every binding and var of the local config, its own values where they must differ",
    (name) => {
      const env = edgeEnv(name);
      expect(Object.keys(env.vars ?? {}).sort()).toEqual(Object.keys(wrangler.vars ?? {}).sort());
      expect(env.d1_databases?.map((d) => d.binding)).toEqual(wrangler.d1_databases?.map((d) => d.binding));
      expect(env.durable_objects?.bindings).toEqual(wrangler.durable_objects?.bindings);
      expect(env.workers_dev).toBe(false);
      expect(env.routes?.length).toBe(1);
      expect(env.routes?.[0]?.custom_domain).toBe(true);
      const url = new URL(env.vars?.SMALL_FUNCTION_URL ?? "");
      expect(url.protocol).toBe("https:");
    },
  );

  it("staging and production share no database, domain or function", () => {
    const [staging, production] = DEPLOYED.map(edgeEnv) as [ReturnType<typeof edgeEnv>, ReturnType<typeof edgeEnv>];
    const db = (e: typeof staging) => e.d1_databases?.[0];
    expect(db(staging)?.database_name).not.toBe(db(production)?.database_name);
    expect(db(staging)?.database_id).not.toBe(db(production)?.database_id);
    for (const e of [staging, production]) expect(db(e)?.database_id).not.toBe(wrangler.d1_databases?.[0]?.database_id);
    expect(staging.routes?.[0]?.pattern).not.toBe(production.routes?.[0]?.pattern);
  });

  it("production calls the small function's revision of the deployed pair", () => {
    const manifest = parseAllDocuments(readFileSync("infra/cloud-run/stitch-small.yaml", "utf8"))[0]?.toJS() as {
      spec: { traffic: { tag: string }[] };
    };
    const tag = manifest.spec.traffic[0]?.tag;
    expect(new URL(edgeEnv("production").vars?.SMALL_FUNCTION_URL ?? "").hostname).toMatch(
      new RegExp(`^${tag}---stitch-small-`),
    );
  });
});
