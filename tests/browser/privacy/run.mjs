// Builds frontend/src/privacy.ts as one ES module (Vite's library mode) into argv[2], then, unless
// --build-only, runs the vectors on it in Node and prints check()'s answer as JSON.
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
const out = resolve(process.argv[2]);
await build({
  configFile: false,
  logLevel: 'silent',
  root,
  build: {
    outDir: out,
    emptyOutDir: true,
    minify: false,
    lib: { entry: join(root, 'frontend/src/privacy.ts'), formats: ['es'], fileName: () => 'privacy.js' },
  },
});
if (!process.argv.includes('--build-only')) {
  const privacy = await import(pathToFileURL(join(out, 'privacy.js')).href);
  const { check } = await import(pathToFileURL(join(here, 'check.js')).href);
  const vectors = JSON.parse(await readFile(join(root, 'tests/fixtures/privacy/vectors.json'), 'utf8'));
  console.log(JSON.stringify(await check(privacy, vectors)));
}
