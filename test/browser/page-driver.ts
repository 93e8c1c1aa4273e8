/**
 * Steps on the served page (`web/`) that the server-mode and local-mode tests both take: console
 * and page errors collected, images generated from a prompt (shown and downloadable, 32×32 with the
 * small test models), the test image uploaded, an upload classified.
 */
import assert from 'node:assert/strict';
import type { Locator, Page } from 'playwright-core';
import { readImage } from '../../src/runtime/node/index.js';
import { testPngBase64 } from '../server-fixture.js';

/** Page errors and console errors, collected from now on (tests assert the list stays empty). */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  return errors;
}

/** Generates `images` images (of `candidates`) from `prompt`; checks they show at 32×32 and download as a 32-pixel PNG. Returns the images. */
export async function generateImages(page: Page, o: { prompt: string; images: number; candidates: number; timeout: number }): Promise<Locator> {
  await page.getByTestId('prompt').fill(o.prompt);
  await page.locator('#dream-images').fill(String(o.images));
  await page.locator('#dream-candidates').fill(String(o.candidates));
  await page.getByTestId('generate').click();
  const images = page.getByTestId('result-image');
  await images.first().waitFor({ state: 'visible', timeout: o.timeout });
  assert.equal(await images.count(), o.images);
  // runs in the page; typed structurally since the DOM types are not in this project's lib
  const size = await images.first().evaluate((img) => {
    const el = img as unknown as { complete: boolean; naturalWidth: number; naturalHeight: number };
    return [el.complete, el.naturalWidth, el.naturalHeight];
  });
  assert.deepEqual(size, [true, 32, 32]);
  const href = await page.locator('#dream-results a[download]').first().getAttribute('href');
  assert.ok(href?.startsWith('data:image/png;base64,'), `download link ${href}`);
  const downloaded = await readImage(Buffer.from(href!.slice('data:image/png;base64,'.length), 'base64'));
  assert.equal(downloaded.width, 32);
  return images;
}

/** Uploads the test image (a gradient PNG) for captioning and classification. */
export async function uploadTestImage(page: Page): Promise<void> {
  await page.getByTestId('upload').setInputFiles({ name: 'gradient.png', mimeType: 'image/png', buffer: Buffer.from(await testPngBase64(), 'base64') });
}

/** Classifies the uploaded image into `classes`: the winner is one of them and each has its bar. Returns the result panel. */
export async function classifyUpload(page: Page, classes: string[], timeout: number): Promise<Locator> {
  await page.getByTestId('classes-input').fill(classes.join(', '));
  await page.getByTestId('classify').click();
  const result = page.getByTestId('class-result');
  await result.locator('.winner strong').waitFor({ timeout });
  const winner = (await result.locator('.winner strong').textContent())?.trim();
  assert.ok(winner && classes.includes(winner), `class ${winner}`);
  assert.equal(await result.locator('.bar').count(), classes.length);
  return result;
}
