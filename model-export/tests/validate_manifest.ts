// Validates manifest files against the pack contract's zod schema (the engine's own check at load).
import { readFileSync } from "node:fs";
import { ModelPackManifestSchema } from "../../shared/schemas/model-pack.js";

for (const path of process.argv.slice(2)) {
  const result = ModelPackManifestSchema.safeParse(JSON.parse(readFileSync(path, "utf8")));
  if (!result.success) {
    console.error(`${path}: ${result.error.message}`);
    process.exit(1);
  }
}
console.log("valid");
