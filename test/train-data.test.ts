import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { RgbImage } from '../src/image/index.js';
import { makeConfig } from '../src/model/config.js';
import { loadDataset, readManifest } from '../src/train/data.js';
import type { TextTokenizer } from '../src/tokenizer/text-encoding.js';
import { YttmTokenizer } from '../src/tokenizer/yttm.js';
import type { ImageTokenizer } from '../src/vqgan/vqgan-model.js';
import { SMALL_PARAMS, SMALL_TOKENIZER, tempDir } from './fixtures.js';

const cfg = makeConfig(SMALL_PARAMS);

/** A stand-in VQGAN: ids from the image's mean colour, counting the images it encodes. */
class CountingCodec implements ImageTokenizer {
  encoded = 0;
  async encode(images: RgbImage[]): Promise<Int32Array> {
    const out = new Int32Array(images.length * cfg.imageLength);
    images.forEach((img, b) => {
      this.encoded++;
      let sum = 0;
      for (const v of img.data) sum += v;
      for (let i = 0; i < cfg.imageLength; i++) out[b * cfg.imageLength + i] = (Math.round(sum / img.data.length) + i) % cfg.imageVocab;
    });
    return out;
  }
  async decodeToImages(): Promise<RgbImage[]> {
    throw new Error('not used');
  }
}

describe('fine-tuning data', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let tokenizer: TextTokenizer;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    tokenizer = (await YttmTokenizer.fromFile(SMALL_TOKENIZER)).asTextTokenizer();
    for (const [name, grey] of [['a', 40], ['b', 200]] as const) {
      const png = await sharp({ create: { width: 8 * cfg.n, height: 8 * cfg.n, channels: 3, background: { r: grey, g: grey, b: grey } } }).png().toBuffer();
      await fsp.writeFile(path.join(dir, `${name}.png`), png);
    }
  });
  after(async () => { await cleanup(); });

  it('reads a manifest that starts with a UTF-8 BOM', async () => {
    const file = path.join(dir, 'bom.jsonl');
    await fsp.writeFile(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${JSON.stringify({ left: 'кот' })}\r\n${JSON.stringify({ image: 'a.png', right: 'серый' })}\r\n`)]));
    const { lines, bad } = await readManifest(file);
    assert.deepEqual(bad, []);
    assert.deepEqual(lines.map((l) => l.line), [1, 2]);
    assert.equal(lines[0].left, 'кот');
  });

  it('cached VQGAN ids carry a checksum; an entry that does not verify is rebuilt', async () => {
    const file = path.join(dir, 'train.jsonl');
    await fsp.writeFile(file, `${JSON.stringify({ image: 'a.png', right: 'тёмный' })}\n${JSON.stringify({ image: 'b.png', right: 'светлый' })}\n`);
    const cacheDir = path.join(dir, 'ids-cache');
    const codec = new CountingCodec();
    const first = await loadDataset(file, { cfg, tokenizer, vqgan: codec, cacheDir, vqganId: 'test' });
    assert.equal(codec.encoded, 2);
    const again = await loadDataset(file, { cfg, tokenizer, vqgan: codec, cacheDir, vqganId: 'test' });
    assert.equal(codec.encoded, 2, 'a verified cache entry is used as is');
    assert.deepEqual(again.samples, first.samples);

    const entries = (await fsp.readdir(cacheDir)).filter((f) => f.endsWith('.ids')).sort();
    assert.equal(entries.length, 2);
    const damaged = path.join(cacheDir, entries[0]);
    const bytes = await fsp.readFile(damaged);
    assert.equal(bytes.length, 32 + 4 * cfg.imageLength);
    bytes[bytes.length - 2] ^= 0x01; // one bit of one id: still a valid id, silently wrong without a checksum
    await fsp.writeFile(damaged, bytes);
    const repaired = await loadDataset(file, { cfg, tokenizer, vqgan: codec, cacheDir, vqganId: 'test' });
    assert.equal(codec.encoded, 3, 'exactly the damaged entry is encoded again');
    assert.deepEqual(repaired.samples, first.samples);
    // the rebuilt entry verifies: the next load encodes nothing
    await loadDataset(file, { cfg, tokenizer, vqgan: codec, cacheDir, vqganId: 'test' });
    assert.equal(codec.encoded, 3);

    // an entry in the old format (ids only) or cut short is rebuilt too
    await fsp.writeFile(damaged, bytes.subarray(32));
    await loadDataset(file, { cfg, tokenizer, vqgan: codec, cacheDir, vqganId: 'test' });
    assert.equal(codec.encoded, 4);
  });
});
