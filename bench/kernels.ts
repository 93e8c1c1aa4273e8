/**
 * `npm run bench -- kernels`: why WASM decodes slower than Node, kernel by kernel (issue 12) —
 * bench/kernel-core.ts's graphs in headless Chromium on onnxruntime-web (WASM) and on
 * onnxruntime-node in this process, with the same threads (THREADS, default 2), and each figure's
 * ratio browser/Node. The weights of one layer fit in the CPU's caches, so these are compute
 * (and per-node) costs, not memory bandwidth.
 */
import '../src/runtime/node/index.js';
import path from 'node:path';
import { openTestPage } from '../test/browser/harness.js';
import { REPO_ROOT } from '../test/helpers.js';
import { benchKernels } from './kernel-core.js';

const threads = Number(process.env.THREADS ?? 2);
const page = await openTestPage<{ kernels(threads: number): Promise<Record<string, number>> }>({ entry: path.join(REPO_ROOT, 'bench', 'kernels-page.ts') });
let browser: Record<string, number>;
try {
  browser = await page.call('kernels', threads);
  if (page.errors.length) throw new Error(page.errors.join('; '));
} finally {
  await page.close();
}
const node = await benchKernels(threads);
const slower = Object.fromEntries(Object.keys(node).map((k) => [k.replace(/_(ms|us)$/, ''), browser[k] / node[k]]));
console.log(JSON.stringify({ threads, browser_wasm: browser, node, browser_over_node: slower }, null, 1));
