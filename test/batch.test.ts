/**
 * Batched task runs (rudolph.runMany): several requests of one task as one batch on the model
 * give exactly the results each gets alone; an invalid or cancelled request fails alone.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InputError, RudolphError } from '../src/errors.js';
import { Rudolph } from '../src/rudolph.js';
import { SMALL_TOKENIZER, tempDir, TINY_VQGAN_DIR, writeSmallModel } from './fixtures.js';
import { testImage } from './server-fixture.js';

describe('batched task runs', () => {
  let r: Rudolph;
  let cleanup: () => Promise<void>;
  before(async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    await writeSmallModel(path.join(t.dir, 'model'));
    // batch size 3: the batch's rows cross chunk boundaries differently from each request alone
    r = await Rudolph.fromPretrained(path.join(t.dir, 'model'), { tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir: path.join(t.dir, 'cache'), threads: 1, batchSize: 3 });
  });
  after(async () => { await r.release(); await cleanup(); });

  it('classify: a batch equals each request alone, bit for bit', async () => {
    const image = testImage();
    const flipped = { ...image, data: image.data.map((v) => 255 - v) };
    const list = [
      { image, classes: ['кошка', 'собака', 'дом'], template: 'на картинке {}' },
      { image: flipped, classes: ['лес', 'море'] },
      { image, classes: ['кошка', 'собака', 'дом', 'машина'], leftTemplate: 'это {}' },
      { image: flipped, classes: ['один'] },
    ];
    assert.ok(r.canBatch('classify'));
    const batched = await Promise.all(r.runMany('classify', list));
    for (const [i, o] of list.entries()) assert.deepEqual(batched[i], await r.classify(o), `request ${i}`);
  });

  it('an invalid or cancelled request fails alone; the rest of the batch completes', async () => {
    const image = testImage();
    const cancelled = new AbortController();
    cancelled.abort(new Error('stop'));
    const results = await Promise.allSettled(r.runMany('classify', [
      { image, classes: ['a', 'b'] },
      { image, classes: [] },
      { image: { ids: [1, 2] }, classes: ['a'] },
      { image, classes: ['a', 'b'], signal: cancelled.signal },
      { image, classes: ['c', 'd'] },
    ]));
    assert.deepEqual(results.map((x) => x.status), ['fulfilled', 'rejected', 'rejected', 'rejected', 'fulfilled']);
    assert.ok((results[1] as PromiseRejectedResult).reason instanceof InputError);
    assert.match(String((results[2] as PromiseRejectedResult).reason), /16 image token ids/);
    assert.equal(((results[3] as PromiseRejectedResult).reason as RudolphError).code, 'ABORTED');
    assert.deepEqual((results[4] as PromiseFulfilledResult<unknown>).value, await r.classify({ image, classes: ['c', 'd'] }));
  });
});
