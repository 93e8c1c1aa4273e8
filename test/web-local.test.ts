/**
 * The page's local mode end to end in headless Chromium: no inference server, the library in a
 * Web Worker on onnxruntime-web (WASM), the small random model fetched from a local stand-in for
 * the hub by Range requests. Loads the model (progress, device shown), generates images from a
 * prompt, captions and classifies an uploaded image, cancels a generation; then, with the hub
 * stopped, a second visit loads the model from the browser's cache and still captions.
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { buildWebSite } from '../scripts/build-web.js';
import { chromiumMissing, launchChromium, type Launched } from './browser/chromium.js';
import { classifyUpload, generateImages, uploadTestImage, watchErrors } from './browser/page-driver.js';
import { startStaticServer, type StaticServer } from './browser/static-server.js';
import { SMALL_TOKENIZER, tempDir, TINY_VQGAN_DIR, writeSmallModel } from './fixtures.js';
import { REPO_ROOT } from './helpers.js';
import { startSmallServer } from './server-fixture.js';

const skip = chromiumMissing();
const REPO = 'test-org/rudolph-small';
let tmp: { dir: string; cleanup: () => Promise<void> };
let site: StaticServer;
let hub: StaticServer | undefined;
let browser: Launched;

before(async () => {
  if (skip) return;
  tmp = await tempDir('rudolph-web-local-');
  const model = path.join(tmp.dir, 'model');
  await writeSmallModel(model);
  await fsp.copyFile(SMALL_TOKENIZER, path.join(model, 'bpe.model'));
  const vqgan = path.join(tmp.dir, 'vqgan');
  await fsp.mkdir(vqgan);
  await fsp.copyFile(path.join(TINY_VQGAN_DIR, 'vqgan.ckpt'), path.join(vqgan, 'vqgan.ckpt'));
  await fsp.copyFile(path.join(TINY_VQGAN_DIR, 'config.yaml'), path.join(vqgan, 'config.yaml'));
  await buildWebSite();
  // the page and the "hub" are two servers, so the hub can be stopped while the page stays
  site = await startStaticServer({ mounts: { '/': path.join(REPO_ROOT, 'web') } });
  hub = await startStaticServer({ mounts: { '/files/vqgan/': vqgan }, repos: { [REPO]: model } });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await site?.close();
  await hub?.close();
  await tmp?.cleanup();
});

function localUrl(hubUrl: string, device: 'wasm' | 'webgpu' = 'wasm'): string {
  const q = new URLSearchParams({ mode: 'local', model: REPO, endpoint: hubUrl, device, vqgan: `${hubUrl}/files/vqgan/vqgan.ckpt`, autoload: '1' });
  return `${site.url}/?${q}`;
}

/** Waits for the loaded model; a load error fails at once with the page's message. */
async function waitReady(page: Page): Promise<void> {
  const ready = page.getByTestId('status').filter({ hasText: 'Готово · локально' });
  // the error line is always in the page, hidden until a load fails: only a shown one counts
  const failed = page.locator('[data-testid="local-error"]:not([hidden])');
  await ready.or(failed).waitFor({ timeout: 150_000 });
  if (await failed.isVisible()) assert.fail(`the model did not load: ${await failed.textContent()}`);
}

describe('local mode (the library in a worker, no server)', { skip }, () => {
  let hubUrl: string;

  it('loads the model from the hub by Range requests and says which device it runs on', { timeout: 240_000 }, async () => {
    hubUrl = hub!.url;
    const page = await browser.context.newPage();
    const errors = watchErrors(page);
    await page.goto(localUrl(hubUrl));
    await waitReady(page);
    const line = page.getByTestId('local-device-line');
    // no precision asked for: WASM's default, int8
    assert.match((await line.textContent()) ?? '', /Устройство: WASM · int8 · .*onnxruntime-web 1\.30\.0/);
    assert.equal(await page.getByTestId('local-note').isVisible(), false, 'no fallback note when WASM was asked for');
    const weights = hub!.requests.filter((r) => r.url.endsWith('/pytorch_model.bin'));
    assert.ok(weights.length > 2, `${weights.length} requests for the checkpoint`);
    assert.ok(weights.every((r) => r.status === 206 && r.range?.startsWith('bytes=')), 'every checkpoint read is a Range request');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('generates images, captions and classifies an upload, and cancels a generation', { timeout: 300_000 }, async () => {
    const page = await browser.context.newPage();
    const errors = watchErrors(page);
    await page.goto(localUrl(hubUrl));
    await waitReady(page);

    await generateImages(page, { prompt: '12 40 7', images: 2, candidates: 2, timeout: 60_000 });

    await uploadTestImage(page);
    const captions = page.getByTestId('captions').locator('li');
    await captions.first().waitFor({ timeout: 60_000 });
    const texts = await captions.allTextContents();
    assert.ok(texts.length >= 1, `${texts.length} captions`);
    await classifyUpload(page, ['кошка', 'собака', 'автомобиль'], 60_000);

    // cancel: a long generation stopped from its progress bar
    await page.locator('#dream-images').fill('1');
    await page.locator('#dream-candidates').fill('64');
    await page.getByTestId('generate').click();
    await page.locator('#dream-stage').filter({ hasText: /%/ }).waitFor({ timeout: 30_000 });
    await page.locator('#dream-cancel').click();
    await page.locator('#dream-error').filter({ hasText: 'Отменено.' }).waitFor({ timeout: 30_000 });
    assert.equal(await page.getByTestId('generate').isDisabled(), false, 'the form is usable again after a cancel');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('a second visit with the hub stopped loads the model from the browser cache; WebGPU asked for, WASM used with a note', { timeout: 240_000 }, async () => {
    await hub!.close();
    hub = undefined;
    const page = await browser.context.newPage();
    const errors = watchErrors(page);
    // this Chromium runs with --disable-gpu: WebGPU has no adapter
    await page.goto(localUrl(hubUrl, 'webgpu'));
    await waitReady(page);
    assert.match((await page.getByTestId('local-device-line').textContent()) ?? '', /Устройство: WASM · int8/);
    assert.equal(await page.getByTestId('local-note').isVisible(), true);
    assert.match((await page.getByTestId('local-note').textContent()) ?? '', /WebGPU.*running on WASM instead/);
    await uploadTestImage(page);
    await page.getByTestId('captions').locator('li').first().waitFor({ timeout: 60_000 });
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('rudolph serve sends the cross-origin isolation headers local mode needs, on the page and the API', { timeout: 120_000 }, async () => {
    const server = await startSmallServer();
    try {
      for (const url of [`${server.url}/`, `${server.url}/app.js`, `${server.url}/v1/health`]) {
        const res = await fetch(url);
        await res.arrayBuffer();
        assert.equal(res.headers.get('cross-origin-opener-policy'), 'same-origin', url);
        assert.equal(res.headers.get('cross-origin-embedder-policy'), 'require-corp', url);
      }
    } finally {
      await server.close();
    }
  });
});
