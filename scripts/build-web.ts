/**
 * `npm run build:web`: the static site in web/dist/ (not committed) — the library bundled for
 * the browser (rudolph-web.js, the `rudolph-ts/web` entry), the local-mode worker
 * (local-worker.js), and onnxruntime-web's own files beside them (its bundle and .wasm, loaded by
 * the worker from the same folder). Prints the bundle sizes (gzipped) as JSON.
 * Tests build their page bundles through `bundleForBrowser`.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const WEB_DIST = path.join(REPO_ROOT, 'web', 'dist');
const ORT_DIST = path.join(REPO_ROOT, 'node_modules', 'onnxruntime-web', 'dist');
/** onnxruntime-web's bundle with WASM and WebGPU (JSEP) and the one .wasm it loads. */
export const ORT_FILES = ['ort.bundle.min.mjs', 'ort-wasm-simd-threaded.jsep.wasm'];

/**
 * onnxruntime-web stays its own file: its WASM threads start workers from its own URL, which must
 * not be a bundle that also holds our worker's message handlers.
 */
const ortExternal: esbuild.Plugin = {
  name: 'ort-external',
  setup(build) {
    build.onResolve({ filter: /^onnxruntime-web$/ }, () => ({ path: './ort.bundle.min.mjs', external: true }));
  },
};

/** Bundles browser entry points into `outDir` (ESM, minified) and copies onnxruntime-web's files there. */
export async function bundleForBrowser(entries: Record<string, string>, outDir: string, minify = true): Promise<void> {
  await fsp.mkdir(outDir, { recursive: true });
  await esbuild.build({
    entryPoints: entries,
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify,
    sourcemap: true,
    splitting: false,
    logLevel: 'warning',
    plugins: [ortExternal],
    // Node-only modules must never reach a browser bundle: fail the build if one does
    external: [],
  });
  for (const f of ORT_FILES) await fsp.copyFile(path.join(ORT_DIST, f), path.join(outDir, f));
}

export async function bundleSizes(dir: string, files: string[]): Promise<Record<string, { bytes: number; gzip: number }>> {
  const out: Record<string, { bytes: number; gzip: number }> = {};
  for (const f of files) {
    const data = await fsp.readFile(path.join(dir, f));
    out[f] = { bytes: data.length, gzip: gzipSync(data, { level: 9 }).length };
  }
  return out;
}

/** web/dist: the library, the local-mode worker and onnxruntime-web's files. */
export async function buildWebSite(out = WEB_DIST): Promise<void> {
  await fsp.rm(out, { recursive: true, force: true });
  await bundleForBrowser({
    'rudolph-web': path.join(REPO_ROOT, 'src', 'web.ts'),
    'local-worker': path.join(REPO_ROOT, 'src', 'runtime', 'web', 'worker.ts'),
  }, out);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildWebSite();
  console.log(JSON.stringify(await bundleSizes(WEB_DIST, ['rudolph-web.js', 'local-worker.js', ...ORT_FILES]), null, 1));
}
