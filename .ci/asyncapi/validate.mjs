// Validates AsyncAPI documents with the official parser (@asyncapi/parser, pinned in
// package.json beside this file): prints every diagnostic, exits 1 on any error.
// Usage: node .ci/asyncapi/validate.mjs docs/events/asyncapi.json
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { Parser } from "@asyncapi/parser";

const SEVERITY = ["error", "warning", "info", "hint"];
let failed = false;
for (const argument of process.argv.slice(2)) {
  const file = resolve(argument);
  const diagnostics = await new Parser().validate(await readFile(file, "utf8"), {
    source: file,
  });
  const errors = diagnostics.filter((d) => d.severity === 0);
  for (const d of diagnostics) {
    console.log(`${argument}: ${SEVERITY[d.severity]} ${d.code} at /${d.path.join("/")}: ${d.message}`);
  }
  console.log(`${argument}: ${errors.length} error(s), ${diagnostics.length - errors.length} other diagnostic(s)`);
  failed ||= errors.length > 0;
}
process.exit(failed ? 1 : 0);
