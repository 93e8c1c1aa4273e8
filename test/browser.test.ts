/**
 * The web page in a real browser (playwright-core driving Debian's chromium) against a server
 * with the small random model: type a prompt and generate an image; upload an image and get
 * captions and a class; continue a text; switch the language; upscale a result. Leaves a screenshot in artifacts/browser.png.
 *
 * Needs /usr/bin/chromium (or RUDOLPH_CHROMIUM): skipped with a note when it is missing,
 * except under CI, where its absence is a failure.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { type BrowserContext, chromium } from 'playwright-core';
import { classifyUpload, generateImages, uploadTestImage, watchErrors } from './browser/page-driver.js';
import { REPO_ROOT } from './helpers.js';
import { startSmallServer, type TestServer } from './server-fixture.js';

const CHROMIUM = process.env.RUDOLPH_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOT = path.join(REPO_ROOT, 'artifacts', 'browser.png');
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const missing = !existsSync(CHROMIUM);
const skip = missing && !process.env.CI
  ? `no chromium at ${CHROMIUM} (apt-get install -y chromium, or set RUDOLPH_CHROMIUM)`
  : false;

let server: TestServer;
let context: BrowserContext;
let profile: string;

before(async () => {
  if (skip) return;
  assert.ok(!missing, `CI needs chromium at ${CHROMIUM}: apt-get install -y chromium`);
  profile = await fsp.mkdtemp(path.join(os.tmpdir(), 'rudolph-chromium-'));
  // the golden tiny Real-ESRGAN ×4 stands in for the hub's weights
  const upscaler = path.join(profile, 'realesrgan');
  await fsp.mkdir(upscaler);
  await fsp.copyFile(path.join(REPO_ROOT, 'test', 'data', 'golden-upscale', 'realesrgan-x4-tiny', 'RealESRGAN_x4.pth'), path.join(upscaler, 'RealESRGAN_x4.pth'));
  server = await startSmallServer({ upscaler });
  // a persistent context is how playwright takes a fresh --user-data-dir
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 }, locale: 'ru-RU',
  });
});

after(async () => {
  await context?.close();
  await server?.close();
  if (profile) await fsp.rm(profile, { recursive: true, force: true });
});

it('generates an image from a prompt, captions and classifies an upload, continues a text, switches language', { skip, timeout: 60_000 }, async () => {
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(server.url);
  await page.getByTestId('status').filter({ hasText: 'Готово' }).waitFor({ timeout: 10_000 });

  // text → images
  const images = await generateImages(page, { prompt: 'красная машина на снегу', images: 2, candidates: 3, timeout: 20_000 });
  assert.equal(await page.getByTestId('progress').isVisible(), false, 'the progress bar stays after the job');

  // the upscale control on a result: the image is replaced by the ×4 one
  assert.equal(await page.getByTestId('upscale').count(), 2);
  await page.getByTestId('upscale').first().click();
  await page.locator('#dream-results figcaption .meta').first().filter({ hasText: '128×128' }).waitFor({ timeout: 20_000 });
  const bigSize = await images.first().evaluate((img) => {
    const el = img as unknown as { complete: boolean; naturalWidth: number; naturalHeight: number };
    return [el.naturalWidth, el.naturalHeight];
  });
  assert.deepEqual(bigSize, [128, 128]);
  assert.equal(await page.getByTestId('upscale').count(), 1, 'the other image keeps its control');

  // image → captions and classes
  await uploadTestImage(page);
  const captions = page.getByTestId('captions').locator('li:not(.live)');
  await captions.first().waitFor({ timeout: 20_000 });
  const captionTexts = await captions.allTextContents();
  assert.ok(captionTexts.length >= 1 && captionTexts.length <= 5, `${captionTexts.length} captions`);
  assert.ok(captionTexts.every((c) => c.startsWith('на картинке')), JSON.stringify(captionTexts));
  // the captions streamed in (token events) before the ranked list replaced them
  assert.ok(Number(await page.getByTestId('captions').getAttribute('data-streamed')) > 0, 'no live caption text');
  assert.equal(await page.getByTestId('captions').locator('li.live').count(), 0);

  const result = await classifyUpload(page, ['кошка', 'собака', 'автомобиль'], 20_000);

  // text continuation
  await page.getByTestId('text-template').fill('лес');
  await page.getByTestId('continue').click();
  const texts = page.getByTestId('texts').locator('li:not(.live)');
  await texts.first().waitFor({ timeout: 20_000 });
  assert.ok((await texts.allTextContents()).every((x) => x.startsWith('лес')));
  assert.ok(Number(await page.getByTestId('texts').getAttribute('data-streamed')) > 0, 'no live text');

  await page.screenshot({ path: SCREENSHOT, fullPage: true }).catch(async () => {
    await fsp.mkdir(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  // language toggle: English labels, and back
  assert.equal(await page.getByTestId('generate').textContent(), 'Сгенерировать');
  await page.getByTestId('lang-toggle').click();
  assert.equal(await page.getByTestId('generate').textContent(), 'Generate');
  assert.equal(await page.locator('html').getAttribute('lang'), 'en');
  assert.equal(await page.getByTestId('status').textContent(), 'Ready');
  assert.match((await result.textContent()) ?? '', /Most likely:/);
  await page.getByTestId('lang-toggle').click();
  assert.equal(await page.getByTestId('generate').textContent(), 'Сгенерировать');

  assert.deepEqual(errors, []);
  await page.close();
});

it('shows server errors by code in the UI language, and the model by name', { skip, timeout: 60_000 }, async () => {
  const page = await context.newPage();
  // runs in the page; the DOM types are not in this project's lib
  await page.addInitScript(() => (globalThis as unknown as { localStorage: { setItem(k: string, v: string): void } }).localStorage.setItem('rudolph-lang', 'ru'));
  await page.goto(server.url);
  await page.getByTestId('status').filter({ hasText: 'Готово' }).waitFor({ timeout: 10_000 });
  const modelInfo = page.locator('#model-info');
  await modelInfo.filter({ hasText: path.basename(server.modelDir) }).waitFor({ timeout: 10_000 });
  assert.ok(!((await modelInfo.textContent()) ?? '').includes('/'), 'the model is named without its path');

  // not an image: the caption job fails with code IMAGE
  await page.getByTestId('upload').setInputFiles({ name: 'broken.png', mimeType: 'image/png', buffer: Buffer.from('not an image at all') });
  const error = page.locator('#caption-error');
  await error.filter({ hasText: 'Не удалось прочитать изображение' }).waitFor({ timeout: 20_000 });
  assert.match((await error.getAttribute('title')) ?? '', /^image: not a readable image/);
  await page.getByTestId('lang-toggle').click();
  assert.equal(await error.textContent(), 'Could not read the image: a PNG, JPEG or WebP file is needed.');
  await page.getByTestId('lang-toggle').click();
  await page.close();
});

