/**
 * The golden parity suite: reads manifest.json from RUDOLPH_GOLDEN_DIR (default test/data/golden)
 * and runs every case whose kind it implements, for every model listed. Prints
 * `PASS|FAIL|SKIP <model>/<case id> <info>` per case and ends with `N passed, N failed, N skipped`; no case at all is a failure.
 * A case kind the suite does not know is a FAIL: it must never pass silently.
 *
 * RUDOLPH_GOLDEN_RUNTIME=browser runs the cases inside headless Chromium on onnxruntime-web
 * (WASM, fp32): the golden folder is served over HTTP with Range support, like the hub, and the
 * page reads every checkpoint and golden file by Range requests (browser-run.ts).
 * RUDOLPH_GOLDEN_DEVICE=webgpu runs them on WebGPU instead (Chromium's SwiftShader adapter here).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { GOLDEN_DIR } from '../helpers.js';
import '../setup.js';
import { apiCaseHandlers } from './api-cases.js';
import { runInBrowser } from './browser-run.js';
import { gradCaseHandlers } from './grad-cases.js';
import { modelCaseHandlers } from './model-cases.js';
import { goldenContext, runCases, type SuiteSummary } from './suite.js';
import type { CaseHandler, Manifest } from './types.js';
import { upscaleCaseHandlers } from './upscale-cases.js';
import { vqganCaseHandlers } from './vqgan-cases.js';

export { caseKind } from './suite.js';

/** Every handler Node runs; the browser runs those of browser-entry.ts and skips the rest, naming why. */
export const NODE_HANDLERS: Record<string, CaseHandler> = {
  ...modelCaseHandlers,
  ...apiCaseHandlers,
  ...vqganCaseHandlers,
  ...gradCaseHandlers,
  ...upscaleCaseHandlers,
};

async function main(): Promise<number> {
  const dir = GOLDEN_DIR;
  const only = process.argv[2];
  const runtime = process.env.RUDOLPH_GOLDEN_RUNTIME ?? 'node';
  let sum: SuiteSummary;
  if (runtime === 'browser') {
    const device = process.env.RUDOLPH_GOLDEN_DEVICE === 'webgpu' ? 'webgpu' : 'wasm';
    sum = await runInBrowser(dir, only, Object.keys(NODE_HANDLERS), (line) => console.log(line), device);
  } else if (runtime === 'node') {
    const manifest = JSON.parse(await fsp.readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
    sum = await runCases(goldenContext(manifest, dir, (...parts) => path.join(dir, ...parts)), NODE_HANDLERS, { only, print: (line) => console.log(line) });
  } else {
    console.error(`RUDOLPH_GOLDEN_RUNTIME must be node or browser, got "${runtime}"`);
    return 2;
  }
  const { passed, failed, skipped } = sum;
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  if (passed + failed + skipped === 0) {
    console.error(`no golden case ran from ${path.join(dir, 'manifest.json')}${only ? ` matching "${only}"` : ''}: nothing was checked`);
    return 1;
  }
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main();
