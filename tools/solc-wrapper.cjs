#!/usr/bin/env node
// A native-solc command line (`--version`, `--standard-json` on stdin) on top
// of solcjs, the official WebAssembly build from npm. py-solc-x (so brownie),
// forge (`--use`) and slither (`--solc`) only know how to call a native solc,
// and no native solc can be downloaded here (see ../shared/docs/TOOLCHAIN.md).
// Imports that the caller did not inline are read from disk relative to
// --base-path / --include-path, or the working directory.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require(path.join(__dirname, '..', 'node_modules', 'solc'));

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  process.stderr.write('solc-wrapper: only --version and --standard-json are supported (solcjs has no --combined-json)\n');
  process.exit(2);
}

function optionValues(name) {
  const values = [];
  args.forEach((arg, i) => {
    if (arg === name && args[i + 1]) values.push(...args[i + 1].split(','));
    else if (arg.startsWith(name + '=')) values.push(...arg.slice(name.length + 1).split(','));
  });
  return values;
}
const roots = [...optionValues('--base-path'), ...optionValues('--include-path'), ...optionValues('--allow-paths'), process.cwd()];

function findImport(importPath) {
  const candidates = path.isAbsolute(importPath) ? [importPath] : roots.map((r) => path.resolve(r, importPath));
  for (const candidate of candidates) {
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    }
  }
  return { error: `File not found: ${importPath} (searched ${roots.join(', ')})` };
}

const input = fs.readFileSync(0, 'utf8');
const output = solc.compile(input, { import: findImport });
// Written in one call: piped solcjs output has been seen cut at 64 KiB.
fs.writeSync(1, output);
