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

export const PAGE_BUILD = path.join(REPO_ROOT, 'artifacts', 'browser-page');
let built: Promise<void> | undefined;

/** Builds the test page once per process. */
export function buildTestPage(): Promise<void> {
  built ??= (async () => {
    await bundleForBrowser({ 'page-entry': path.join(REPO_ROOT, 'test', 'browser', 'page-entry.ts') }, PAGE_BUILD, false);
    await fsp.copyFile(path.join(REPO_ROOT, 'test', 'browser', 'index.html'), path.join(PAGE_BUILD, 'index.html'));
  })();
  return built;
}

export interface TestPage {
  page: Page;
  server: StaticServer;
  browser: Launched;
  errors: string[];
  /** Calls `rudolphTest[name](...args)` in the page. */
  call<K extends keyof RudolphTestApi>(name: K, ...args: Parameters<RudolphTestApi[K]>): Promise<Awaited<ReturnType<RudolphTestApi[K]>>>;
  close(): Promise<void>;
}

export async function openTestPage(opts: { mounts?: StaticServerOptions['mounts']; repos?: StaticServerOptions['repos']; webgpu?: boolean; log?: (line: string) => void } = {}): Promise<TestPage> {
  await buildTestPage();
  const server = await startStaticServer({ mounts: { '/': PAGE_BUILD, ...opts.mounts }, repos: opts.repos });
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
