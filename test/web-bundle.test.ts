/**
 * The browser bundles as `npm run build:web` makes them: the library (`rudolph-ts/web`) and the
 * local-mode worker each stay within 400 kB gzipped without onnxruntime-web (issue 12's budget),
 * onnxruntime-web stays its own file, and no Node module reaches a browser bundle (the build fails
 * on one).
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as esbuild from 'esbuild';
import { bundleForBrowser, bundleSizes, ORT_FILES } from '../scripts/build-web.js';
import { REPO_ROOT } from './helpers.js';

/** The budget for one bundle of our own code, gzipped (onnxruntime-web's JS and .wasm come on top). */
const MAX_GZIP_BYTES = 400 * 1024;

let dir: string;
let sizes: Record<string, { bytes: number; gzip: number }>;

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'rudolph-bundle-'));
  await bundleForBrowser({
    'rudolph-web': path.join(REPO_ROOT, 'src', 'web.ts'),
    'local-worker': path.join(REPO_ROOT, 'src', 'runtime', 'web', 'worker.ts'),
  }, dir);
  sizes = await bundleSizes(dir, ['rudolph-web.js', 'local-worker.js', ...ORT_FILES]);
  console.log(Object.entries(sizes).map(([f, s]) => `${f}: ${(s.bytes / 1024).toFixed(1)} kB, ${(s.gzip / 1024).toFixed(1)} kB gzipped`).join('\n'));
});

after(async () => {
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

describe('browser bundles', () => {
  it('the library and the worker are each at most 400 kB gzipped, without onnxruntime-web', () => {
    for (const f of ['rudolph-web.js', 'local-worker.js']) {
      assert.ok(sizes[f].gzip <= MAX_GZIP_BYTES, `${f}: ${sizes[f].gzip} bytes gzipped, over ${MAX_GZIP_BYTES}`);
      assert.ok(sizes[f].gzip > 10 * 1024, `${f}: ${sizes[f].gzip} bytes gzipped is too small to hold the library`);
    }
  });

  it('leaves onnxruntime-web out of our bundles, importing it from its own file beside them', async () => {
    for (const f of ['rudolph-web.js', 'local-worker.js']) {
      const js = await fsp.readFile(path.join(dir, f), 'utf8');
      assert.match(js, /from\s*"\.\/ort\.bundle\.min\.mjs"/, `${f} imports onnxruntime-web's bundle`);
      // onnxruntime-web's own bundle is larger than our whole budget: it cannot hide inside ours
      assert.ok(sizes[f].gzip < sizes['ort.bundle.min.mjs'].gzip, `${f} seems to contain onnxruntime-web`);
    }
  });

  it('fails the build when a Node module would reach a browser bundle', async () => {
    const entry = path.join(dir, 'uses-fs.ts');
    await fsp.writeFile(entry, "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n");
    await assert.rejects(bundleForBrowser({ bad: entry }, path.join(dir, 'bad')), (e: unknown) => {
      assert.ok(e instanceof Error && 'errors' in e, String(e));
      assert.match((e as esbuild.BuildFailure).errors.map((m) => m.text).join('\n'), /node:fs/);
      return true;
    });
  });
});
