/**
 * `npm run bench -- browser` (run it under `flock /work/heavy.lock`): the 350M preset with random
 * weights in headless Chromium on onnxruntime-web (WASM, 2 threads, int8 by default): session
 * build time, decode tokens/s at batch 1 and 8, the tab's memory (the renderer process's peak
 * RSS, and what the page itself measures); then the same code on onnxruntime-node in this
 * process for the ratio; and the library bundle's size (gzipped, without onnxruntime-web).
 * Env: PRECISION (int8), THREADS (2), DECODE_TOKENS (64); INT8_KERNEL (nbits8 | dq-int8) and
 * ACCURACY_LEVEL (MatMulNBits: 4 int8 compute, 0 float) to compare kernels; BATCHES (1,8).
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleForBrowser, bundleSizes } from '../scripts/build-web.js';
import type { LinearPrecision } from '../src/model/graph-context.js';
import { openTestPage } from '../test/browser/harness.js';
import { REPO_ROOT } from '../test/helpers.js';
import { benchDecode, type BrowserBenchApi, type DecodeBenchOptions } from './decode-core.js';

const opts: DecodeBenchOptions = {
  precision: (process.env.PRECISION ?? 'int8') as LinearPrecision,
  threads: Number(process.env.THREADS ?? 2),
  decodeTokens: Number(process.env.DECODE_TOKENS ?? 64),
  batches: (process.env.BATCHES ?? '1,8').split(',').map(Number),
  ...(process.env.INT8_KERNEL || process.env.ACCURACY_LEVEL ? {
    quant: {
      ...(process.env.INT8_KERNEL ? { int8Kernel: process.env.INT8_KERNEL as 'dq-int8' | 'nbits8' } : {}),
      ...(process.env.ACCURACY_LEVEL ? { accuracyLevel: Number(process.env.ACCURACY_LEVEL) } : {}),
    },
  } : {}),
};

/** Peak and current RSS (MB) of the renderer processes of a Chromium profile (Linux /proc). */
async function rendererMemory(profile: string): Promise<{ peak_mb: number; rss_mb: number }> {
  let peak = 0, rss = 0;
  for (const pid of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmd.includes('--type=renderer') || !cmd.includes(profile)) continue;
    const status = await fsp.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    peak = Math.max(peak, kb('VmHWM') / 1024);
    rss = Math.max(rss, kb('VmRSS') / 1024);
  }
  return { peak_mb: peak, rss_mb: rss };
}

async function bundle(): Promise<Record<string, number>> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'rudolph-bundle-'));
  try {
    await bundleForBrowser({ 'rudolph-web': path.join(REPO_ROOT, 'src', 'web.ts') }, dir);
    const s = await bundleSizes(dir, ['rudolph-web.js', 'ort.bundle.min.mjs', 'ort-wasm-simd-threaded.jsep.wasm']);
    return {
      library_kb: s['rudolph-web.js'].bytes / 1024, library_gzip_kb: s['rudolph-web.js'].gzip / 1024,
      ort_js_gzip_kb: s['ort.bundle.min.mjs'].gzip / 1024, ort_wasm_gzip_kb: s['ort-wasm-simd-threaded.jsep.wasm'].gzip / 1024,
    };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

const page = await openTestPage<BrowserBenchApi>({ entry: path.join(REPO_ROOT, 'bench', 'browser-page.ts') });
let browser: Record<string, number | string | boolean>;
try {
  browser = await page.call('decode', opts);
  const tab = await rendererMemory(page.browser.profile);
  browser.tab_peak_rss_mb = tab.peak_mb;
  browser.tab_rss_after_mb = tab.rss_mb;
  const measured = await page.call('memory');
  if (measured !== null) browser.tab_measured_memory_mb = measured / 2 ** 20;
  if (page.errors.length) browser.page_errors = page.errors.join('; ');
} finally {
  await page.close();
}
const node = await benchDecode({ ...opts, executionProviders: ['cpu'] });
const result = {
  machine: `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''}`,
  options: opts,
  browser_wasm: browser,
  node,
  ratio_b1: Number(browser.decode_b1_tokens_per_s) / Number(node.decode_b1_tokens_per_s),
  ratio_b8: Number(browser.decode_b8_tokens_per_s) / Number(node.decode_b8_tokens_per_s),
  bundle: await bundle(),
};
console.log(JSON.stringify(result, null, 1));
