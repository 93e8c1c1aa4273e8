/**
 * The golden suite in headless Chromium: the golden folder served at /golden/ by the test
 * server (Range requests, like the hub), the page (browser-entry.ts) runs the cases on
 * onnxruntime-web and hands back its lines, printed here as they would be on Node.
 */
import path from 'node:path';
import { chromiumMissing } from '../browser/chromium.js';
import { openTestPage } from '../browser/harness.js';
import { REPO_ROOT } from '../helpers.js';
import type { GoldenPageApi, SuiteSummary } from './suite.js';

export async function runInBrowser(dir: string, only: string | undefined, nodeKinds: string[], print: (line: string) => void, device: 'webgpu' | 'wasm' = 'wasm', cases?: RegExp): Promise<SuiteSummary> {
  const missing = chromiumMissing();
  if (missing) {
    print(`SKIP browser/all ${missing}`);
    return { passed: 0, failed: 0, skipped: 1 };
  }
  const page = await openTestPage<GoldenPageApi>({ entry: path.join(REPO_ROOT, 'test', 'golden', 'browser-entry.ts'), mounts: { '/golden/': path.resolve(dir) }, webgpu: device === 'webgpu' });
  try {
    const { lines, summary } = await page.call('runGolden', `${page.server.url}/golden/`, only, nodeKinds, device, cases?.source);
    lines.forEach(print);
    const errors = page.errors.filter((e) => !/404 \(Not Found\)/.test(e));
    if (errors.length) {
      print(`FAIL browser/page errors in the page: ${errors.join('; ')}`);
      summary.failed++;
    }
    return summary;
  } finally {
    await page.close();
  }
}
