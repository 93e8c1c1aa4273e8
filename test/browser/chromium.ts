/**
 * Headless Chromium for the browser tests, golden run and bench: Debian's chromium driven by
 * playwright-core, a fresh profile per launch (or a kept one, for the second-visit cache test),
 * flags that keep it off the network, plus WebGPU on the software adapter where Chromium has one.
 */
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

export const CHROMIUM = process.env.RUDOLPH_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
/** WebGPU without a GPU: Chromium's SwiftShader (Vulkan) software adapter. */
export const WEBGPU_FLAGS = [
  '--headless', '--no-sandbox', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-webgpu-adapter=swiftshader',
  '--use-angle=swiftshader', '--disable-vulkan-surface',
];

/** Why the browser tests cannot run here, or false. Under CI a missing chromium is a failure, not a skip. */
export function chromiumMissing(): string | false {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI) throw new Error(`CI needs chromium at ${CHROMIUM}: apt-get install -y chromium`);
  return `no chromium at ${CHROMIUM} (apt-get install -y chromium, or set RUDOLPH_CHROMIUM)`;
}

export interface Launched { context: BrowserContext; profile: string; close(keepProfile?: boolean): Promise<void> }

export async function launchChromium(opts: { profile?: string; webgpu?: boolean } = {}): Promise<Launched> {
  const profile = opts.profile ?? await fsp.mkdtemp(path.join(os.tmpdir(), 'rudolph-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: opts.webgpu ? WEBGPU_FLAGS : CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 900 }, locale: 'ru-RU',
  });
  return {
    context,
    profile,
    async close(keepProfile = false) {
      await context.close();
      if (!keepProfile) await fsp.rm(profile, { recursive: true, force: true });
    },
  };
}
