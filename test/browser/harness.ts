/**
 * The browser test page, ready to drive: its bundle built by esbuild (test/browser/page-entry.ts
 * plus onnxruntime-web's files), served from 127.0.0.1 with Range support and COOP/COEP beside
 * any extra folders and hub repos, opened in headless Chromium. Console errors and page errors
 * are collected so tests can assert there were none.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { bundleForBrowser } from '../../scripts/build-web.js';
import { REPO_ROOT } from '../helpers.js';
import { launchChromium, type Launched } from './chromium.js';
import type { RudolphTestApi } from './api.js';
import { startStaticServer, type StaticServer, type StaticServerOptions } from './static-server.js';

export const TEST_PAGE_ENTRY = path.join(REPO_ROOT, 'test', 'browser', 'page-entry.ts');
const built = new Map<string, Promise<string>>();

/** Builds a page (index.html loading `page-entry.js` bundled from `entry`) once per process; returns its folder. */
export function buildTestPage(entry = TEST_PAGE_ENTRY): Promise<string> {
  let hit = built.get(entry);
  if (!hit) {
    const dir = path.join(REPO_ROOT, 'artifacts', 'browser-pages', path.basename(entry, '.ts'));
    hit = (async () => {
      await bundleForBrowser({ 'page-entry': entry }, dir, false);
      await fsp.copyFile(path.join(REPO_ROOT, 'test', 'browser', 'index.html'), path.join(dir, 'index.html'));
      return dir;
    })();
    built.set(entry, hit);
  }
  return hit;
}

export interface TestPage<Api = RudolphTestApi> {
  page: Page;
  server: StaticServer;
  browser: Launched;
  errors: string[];
  /** Calls `rudolphTest[name](...args)` in the page. */
  call<K extends keyof Api>(name: K, ...args: Api[K] extends (...a: infer A) => unknown ? A : never): Promise<Api[K] extends (...a: never[]) => infer R ? Awaited<R> : never>;
  close(): Promise<void>;
}

export interface TestPageOptions {
  /** the page's entry module (default: test/browser/page-entry.ts) */
  entry?: string;
  mounts?: StaticServerOptions['mounts'];
  repos?: StaticServerOptions['repos'];
  webgpu?: boolean;
  log?: (line: string) => void;
}

export async function openTestPage<Api = RudolphTestApi>(opts: TestPageOptions = {}): Promise<TestPage<Api>> {
  const dir = await buildTestPage(opts.entry);
  const server = await startStaticServer({ mounts: { '/': dir, ...opts.mounts }, repos: opts.repos });
  const browser = await launchChromium({ webgpu: opts.webgpu });
  const page = await browser.context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    opts.log?.(`[page ${m.type()}] ${m.text()}`);
  });
  await page.goto(`${server.url}/index.html`);
  await page.waitForFunction(() => (globalThis as unknown as { rudolphReady?: boolean }).rudolphReady === true, null, { timeout: 30_000 });
  return {
    page, server, browser, errors,
    call: (name, ...args) => page.evaluate(([n, a]) => {
      const api = (globalThis as unknown as { rudolphTest: Record<string, (...x: unknown[]) => Promise<unknown>> }).rudolphTest;
      return api[n as string](...(a as unknown[]));
    }, [name, args] as const) as never,
    async close() {
      await browser.close();
      await server.close();
    },
  };
}
