import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { RudolphError } from '../src/errors.js';
import { peakMemory } from '../fuzz/lib/memory.js';
import { composeGrid, cropImage, fromFloatCHW, ImageError, preprocessImage, resizeBilinearPil, type RgbImage, squareCropBox, toFloatCHW } from '../src/image/index.js';
import { encodePng, readImage, writePng } from '../src/runtime/node/index.js';

// ---------- helpers ----------

function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomImage(width: number, height: number, seed: number): RgbImage {
  const rnd = seededRandom(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rnd() * 256);
  return { width, height, data };
}

/** A smooth image with some noise: closer to photos than pure noise. */
function texturedImage(width: number, height: number, seed: number): RgbImage {
  const rnd = seededRandom(seed);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const v = 128 + 70 * Math.sin(x / (5 + c) + y / 11) + 40 * Math.cos(y / 3) + (rnd() - 0.5) * 30;
        data[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return { width, height, data };
}

/** Each pixel encodes its own coordinates, so crops can be located exactly. */
function coordinateImage(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([x & 255, y & 255, (x >> 8) * 16 + (y >> 8)], (y * width + x) * 3);
  }
  return { width, height, data };
}

function pixel(img: RgbImage, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return Array.from(img.data.subarray(i, i + 3));
}

function rawInput(img: RgbImage): ReturnType<typeof sharp> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
}

function row(values: number[][]): RgbImage {
  return { width: values.length, height: 1, data: Uint8Array.from(values.flat()) };
}

function column(values: number[][]): RgbImage {
  return { width: 1, height: values.length, data: Uint8Array.from(values.flat()) };
}

/**
 * Test-only reference for antialiased bilinear resizing, written independently of the
 * fixed-point port: each output pixel is the triangle-weighted mean (half-width
 * max(1, in/out) input pixels, centred on the output pixel's centre mapped to input
 * coordinates) over every input pixel, computed in double in both directions at once,
 * rounded once. Pillow rounds the horizontal pass to 8 bits, so it may differ by one.
 */
function referenceResize(img: RgbImage, outW: number, outH: number): Float64Array {
  const weightsFor = (inSize: number, outSize: number): number[][] => {
    const scale = inSize / outSize;
    const support = Math.max(1, scale);
    const table: number[][] = [];
    for (let o = 0; o < outSize; o++) {
      const centre = (o + 0.5) * scale;
      const w = Array.from({ length: inSize }, (_, i) => Math.max(0, 1 - Math.abs(i + 0.5 - centre) / support));
      const total = w.reduce((a, b) => a + b, 0);
      table.push(w.map((v) => v / total));
    }
    return table;
  };
  const wx = weightsFor(img.width, outW);
  const wy = weightsFor(img.height, outH);
  const out = new Float64Array(outW * outH * 3);
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let y = 0; y < img.height; y++) {
          if (wy[oy][y] === 0) continue;
          let sx = 0;
          for (let x = 0; x < img.width; x++) sx += wx[ox][x] * img.data[(y * img.width + x) * 3 + c];
          s += wy[oy][y] * sx;
        }
        out[(oy * outW + ox) * 3 + c] = s;
      }
    }
  }
  return out;
}

async function expectImageError(promise: Promise<unknown>, ...fragments: string[]): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ImageError, `expected ImageError, got ${String(err)}`);
    assert.ok(err instanceof RudolphError);
    assert.equal(err.code, 'IMAGE');
    for (const f of fragments) assert.ok(err.message.includes(f), `"${err.message}" should mention "${f}"`);
    return true;
  });
}

/** Rewrites a PNG's IHDR width/height (and its CRC) without touching the pixel data. */
function withClaimedSize(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  assert.equal(out.toString('latin1', 12, 16), 'IHDR');
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29);
  return out;
}

let dir: string;
before(async () => { dir = await mkdtemp(path.join(tmpdir(), 'rudolph-image-test-')); });
after(async () => { await rm(dir, { recursive: true, force: true }); });

// ---------- decoding ----------

describe('readImage', () => {
  const src = texturedImage(37, 23, 1);

  test('PNG decodes to the exact pixels, from a buffer and from a file', async () => {
    const png = await rawInput(src).png().toBuffer();
    const fromBuffer = await readImage(png);
    assert.equal(fromBuffer.width, 37);
    assert.equal(fromBuffer.height, 23);
    assert.deepEqual(fromBuffer.data, src.data);
    const file = path.join(dir, 'src.png');
    await writeFile(file, png);
    assert.deepEqual((await readImage(file)).data, src.data);
  });

  test('lossless WebP decodes exactly; JPEG decodes close to the source', async () => {
    const webp = await rawInput(src).webp({ lossless: true }).toBuffer();
    assert.deepEqual((await readImage(webp)).data, src.data);
    const jpeg = await rawInput(src).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer();
    const dec = await readImage(jpeg);
    assert.equal(dec.width, 37);
    assert.equal(dec.height, 23);
    let sum = 0;
    for (let i = 0; i < dec.data.length; i++) sum += Math.abs(dec.data[i] - src.data[i]);
    assert.ok(sum / dec.data.length < 3, `mean JPEG error ${sum / dec.data.length}`);
  });

  test('greyscale is copied to R, G and B', async () => {
    const grey = Uint8Array.from([0, 17, 128, 200, 254, 255]);
    const png = await sharp(grey, { raw: { width: 3, height: 2, channels: 1 } })
      .toColourspace('b-w').png().toBuffer();
    assert.equal((await sharp(png).metadata()).channels, 1);
    const img = await readImage(png);
    assert.deepEqual(Array.from(img.data), Array.from(grey).flatMap((v) => [v, v, v]));
  });

  test('alpha is dropped without compositing, as PIL convert("RGB") does', async () => {
    const rgba = Uint8Array.from([10, 20, 30, 0, 40, 50, 60, 128, 70, 80, 90, 255, 200, 210, 220, 1]);
    const png = await sharp(rgba, { raw: { width: 2, height: 2, channels: 4 } }).png().toBuffer();
    assert.equal((await sharp(png).metadata()).hasAlpha, true);
    const img = await readImage(png);
    assert.deepEqual(Array.from(img.data), [10, 20, 30, 40, 50, 60, 70, 80, 90, 200, 210, 220]);
  });

  test('palette PNG expands to its colours', async () => {
    const colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 0, 255], [255, 0, 0]];
    const png = await sharp(Uint8Array.from(colours.flat()), { raw: { width: 3, height: 2, channels: 3 } })
      .png({ palette: true, colours: 4, dither: 0 }).toBuffer();
    assert.equal((await sharp(png).metadata()).isPalette, true);
    assert.deepEqual(Array.from((await readImage(png)).data), colours.flat());
  });

  test('16-bit PNGs (RGB, RGBA, grey) keep the high byte', async () => {
    const values = [0x0000, 0x00ff, 0x0100, 0x7fff, 0x8000, 0xfeff, 0xff00, 0xffff];
    const high = values.map((v) => v >> 8);
    const rgb16 = await sharp(Uint16Array.from(values.flatMap((v) => [v, 0xffff - v, v])),
      { raw: { width: 8, height: 1, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
    const rgba16 = await sharp(Uint16Array.from(values.flatMap((v) => [v, 0xffff - v, v, 0x1234])),
      { raw: { width: 8, height: 1, channels: 4 } }).toColourspace('rgb16').png().toBuffer();
    const grey16 = await sharp(Uint16Array.from(values), { raw: { width: 8, height: 1, channels: 1 } })
      .toColourspace('grey16').png().toBuffer();
    for (const png of [rgb16, rgba16, grey16]) assert.equal((await sharp(png).metadata()).depth, 'ushort');
    const expectRgb = high.flatMap((h, i) => [h, (0xffff - values[i]) >> 8, h]);
    assert.deepEqual(Array.from((await readImage(rgb16)).data), expectRgb);
    assert.deepEqual(Array.from((await readImage(rgba16)).data), expectRgb);
    assert.deepEqual(Array.from((await readImage(grey16)).data), high.flatMap((h) => [h, h, h]));
  });

  test('EXIF orientation is not applied (PIL does not rotate either)', async () => {
    // Left half red, right half blue, stored with orientation 6 (rotate 90° to display).
    const img: RgbImage = { width: 40, height: 20, data: new Uint8Array(40 * 20 * 3) };
    for (let y = 0; y < 20; y++) {
      for (let x = 0; x < 40; x++) img.data.set(x < 20 ? [255, 0, 0] : [0, 0, 255], (y * 40 + x) * 3);
    }
    const jpeg = await rawInput(img).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    assert.equal((await sharp(jpeg).metadata()).orientation, 6);
    const dec = await readImage(jpeg);
    assert.equal(dec.width, 40);
    assert.equal(dec.height, 20);
    assert.ok(pixel(dec, 5, 10)[0] > 200 && pixel(dec, 5, 10)[2] < 50, 'left stays red');
    assert.ok(pixel(dec, 35, 10)[2] > 200 && pixel(dec, 35, 10)[0] < 50, 'right stays blue');
  });
});

describe('readImage errors', () => {
  test('truncated PNG and JPEG', async () => {
    const src = texturedImage(64, 48, 2);
    const png = await rawInput(src).png().toBuffer();
    const jpeg = await rawInput(src).jpeg().toBuffer();
    await expectImageError(readImage(png.subarray(0, Math.floor(png.length * 0.6)), { name: 'cut.png' }), 'cut.png', 'decode');
    await expectImageError(readImage(png.subarray(0, png.length - 20), { name: 'cut-end.png' }), 'cut-end.png');
    await expectImageError(readImage(jpeg.subarray(0, Math.floor(jpeg.length * 0.6)), { name: 'cut.jpg' }), 'cut.jpg', 'decode');
    const file = path.join(dir, 'truncated.png');
    await writeFile(file, png.subarray(0, 100));
    await expectImageError(readImage(file), file);
  });

  test('random bytes, empty input, missing file, directory', async () => {
    const rnd = seededRandom(3);
    const junk = Uint8Array.from({ length: 1000 }, () => Math.floor(rnd() * 256));
    await expectImageError(readImage(junk), 'image data (1000 bytes)', 'not a readable image');
    await expectImageError(readImage(new Uint8Array(0), { name: 'upload' }), 'upload', 'empty');
    const empty = path.join(dir, 'empty.png');
    await writeFile(empty, new Uint8Array(0));
    await expectImageError(readImage(empty), empty, 'empty');
    const missing = path.join(dir, 'no-such-image.png');
    await expectImageError(readImage(missing), missing, 'not found');
    await expectImageError(readImage(dir), dir, 'directory');
  });

  test('images over maxPixels are refused before decoding', async () => {
    const png = await rawInput(texturedImage(100, 60, 4)).png().toBuffer();
    await expectImageError(readImage(png, { maxPixels: 5999, name: 'big.png' }), 'big.png', '100×60', 'maxPixels 5999');
    assert.equal((await readImage(png, { maxPixels: 6000 })).width, 100);
    // A header claiming 30000×30000 over a tiny image: the default limit (8192 × 6144, 50 MP) refuses it.
    const bomb = withClaimedSize(png, 30000, 30000);
    assert.equal((await sharp(bomb, { limitInputPixels: false }).metadata()).width, 30000);
    await expectImageError(readImage(bomb, { name: 'bomb.png' }), 'bomb.png', '30000×30000', '900.0 megapixels');
    await expectImageError(readImage(withClaimedSize(png, 8192, 6145), { name: 'b.png' }), 'b.png', '50.3 megapixels', 'maxPixels 50331648');
    // found by the fuzzer: a 275-byte JPEG claiming 4944×13080 decoded (grey) at a 266 MB peak under the old 100 MP default
    const jpeg = Buffer.from(await rawInput(texturedImage(16, 16, 3)).jpeg().toBuffer());
    const sof = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xc0);
    jpeg.writeUInt16BE(13080, sof + 5);
    jpeg.writeUInt16BE(4944, sof + 7);
    const memory = peakMemory();
    await expectImageError(readImage(jpeg.subarray(0, 400), { name: 'tall.jpg' }), 'tall.jpg', '4944×13080', '64.7 megapixels');
    assert.ok(memory.growthMB() < 50, `grew ${memory.growthMB()} MB`);
  });

  test('formats whose decoders need more memory a pixel get proportionally fewer pixels', async () => {
    const base = rawInput(texturedImage(100, 60, 4));
    const png = await base.clone().png().toBuffer();
    const webp = await base.clone().webp({ lossless: true }).toBuffer();
    assert.equal((await readImage(png, { maxPixels: 6000 })).width, 100);
    // WebP decodes at ~11 bytes a pixel (PNG ~3.6): counted at 16 against 4, a quarter of the pixels
    await expectImageError(readImage(webp, { maxPixels: 6000, name: 'w.webp' }), 'w.webp', 'over the limit of 0.0', 'for WEBP', '16 bytes a pixel');
    assert.equal((await readImage(webp, { maxPixels: 24000 })).width, 100);
  });

  test('a JPEG too small for the pixels its header claims is refused before decoding (the fuzzer: 508 bytes for 3119×14367 decoded at a 263 MB peak)', async () => {
    const jpeg = Buffer.from(await rawInput(texturedImage(16, 16, 3)).jpeg().toBuffer());
    const sof = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xc0);
    jpeg.writeUInt16BE(14367, sof + 5);
    jpeg.writeUInt16BE(3119, sof + 7);
    const memory = peakMemory();
    await expectImageError(readImage(jpeg, { name: 'lie.jpg' }), 'lie.jpg', `a ${jpeg.length}-byte JPEG cannot hold 3119×14367 pixels`);
    assert.ok(memory.growthMB() < 50, `grew ${memory.growthMB()} MB`);
  });

  test('a side over 32768 pixels is refused from the header (a 16777216×1 claim cost 336 MB and 4 s in the decoder)', async () => {
    const png = await rawInput(texturedImage(16, 1, 3)).png().toBuffer();
    const row = withClaimedSize(png, 16_777_216, 1);
    const memory = peakMemory();
    const t0 = performance.now();
    await expectImageError(readImage(row, { name: 'row.png' }), 'row.png', '16777216×1', 'side over 32768');
    assert.ok(performance.now() - t0 < 1000);
    assert.ok(memory.growthMB() < 50, `grew ${memory.growthMB()} MB`);
  });
});

// ---------- encoding ----------

describe('encodePng / writePng', () => {
  test('PNG round trip is exact', async () => {
    const img = randomImage(19, 31, 5);
    const png = await encodePng(img);
    assert.equal(png.toString('latin1', 1, 4), 'PNG');
    const back = await readImage(png);
    assert.deepEqual([back.width, back.height], [19, 31]);
    assert.deepEqual(back.data, img.data);
  });

  test('writePng writes atomically and leaves no temporary files', async () => {
    const sub = await mkdtemp(path.join(dir, 'write-'));
    const file = path.join(sub, 'out.png');
    const first = randomImage(8, 8, 6);
    const second = randomImage(9, 7, 7);
    await writePng(file, first);
    await writePng(file, second);
    assert.deepEqual(await readdir(sub), ['out.png']);
    const back = await readImage(file);
    assert.deepEqual([back.width, back.height], [9, 7]);
    assert.deepEqual(back.data, second.data);
  });

  test('writePng into a missing folder fails with ImageError naming the path', async () => {
    const file = path.join(dir, 'missing-folder', 'out.png');
    await expectImageError(writePng(file, randomImage(2, 2, 8)), file);
  });

  test('malformed RgbImage is refused', async () => {
    await expectImageError(encodePng({ width: 4, height: 4, data: new Uint8Array(47) }), '48 bytes', '47');
    await expectImageError(encodePng({ width: 0, height: 4, data: new Uint8Array(0) }), '0×4');
  });
});

// ---------- preprocessing ----------

describe('squareCropBox / preprocessImage', () => {
  test('crop box is the centred square of the shorter side (torchvision fallback)', () => {
    assert.deepEqual(squareCropBox(300, 200), { left: 50, top: 0, side: 200 });
    assert.deepEqual(squareCropBox(200, 300), { left: 0, top: 50, side: 200 });
    assert.deepEqual(squareCropBox(101, 150), { left: 0, top: 24, side: 101 }); // (150-101)//2
    assert.deepEqual(squareCropBox(7, 4), { left: 1, top: 0, side: 4 });        // (7-4)//2
    assert.deepEqual(squareCropBox(65, 64), { left: 0, top: 0, side: 64 });
    assert.deepEqual(squareCropBox(64, 64), { left: 0, top: 0, side: 64 });
  });

  test('non-square images are cropped at the exact offsets', () => {
    const wide = coordinateImage(300, 200);
    const a = preprocessImage(wide, 200); // crop only, resize is identity
    assert.deepEqual([a.width, a.height], [200, 200]);
    assert.deepEqual(pixel(a, 0, 0), pixel(wide, 50, 0));
    assert.deepEqual(pixel(a, 199, 199), pixel(wide, 249, 199));
    const tall = coordinateImage(101, 150);
    const b = preprocessImage(tall, 101);
    assert.deepEqual(pixel(b, 0, 0), pixel(tall, 0, 24));
    assert.deepEqual(pixel(b, 100, 100), pixel(tall, 100, 124));
    assert.deepEqual(b.data, cropImage(tall, { left: 0, top: 24, side: 101 }).data);
  });

  test('output is size×size and equals crop then PIL-bilinear resize', () => {
    const src = texturedImage(90, 61, 9);
    const out = preprocessImage(src, 32);
    assert.deepEqual([out.width, out.height, out.data.length], [32, 32, 32 * 32 * 3]);
    const expected = resizeBilinearPil(cropImage(src, { left: 14, top: 0, side: 61 }), 32, 32);
    assert.deepEqual(out.data, expected.data);
    assert.throws(() => preprocessImage(src, 0), /positive integer/);
  });
});

describe('resizeBilinearPil (Pillow Image.BILINEAR)', () => {
  test('2→1 averages with Pillow\'s round-half-up fixed point', () => {
    // Weights 1/2, 1/2: (100 + 101) / 2 = 100.5 → 101; (0 + 1) / 2 → 1.
    assert.deepEqual(Array.from(resizeBilinearPil(row([[100, 0, 7], [101, 1, 9]]), 1, 1).data), [101, 1, 8]);
    assert.deepEqual(Array.from(resizeBilinearPil(column([[100, 0, 7], [101, 1, 9]]), 1, 1).data), [101, 1, 8]);
  });

  test('4→2 downscale widens the filter (antialiasing): weights 3/7, 3/7, 1/7', () => {
    // Output 0 centre 1.0, support 2: taps 0..2 with triangle weights .75 .75 .25 → 3/7 3/7 1/7.
    // Output 1 centre 3.0: taps 1..3 → 1/7 3/7 3/7. Point sampling would give 35 and 175.
    const src = row([[0, 0, 0], [70, 70, 70], [140, 140, 140], [210, 210, 210]]);
    assert.deepEqual(Array.from(resizeBilinearPil(src, 2, 1).data), [50, 50, 50, 160, 160, 160]);
    const tall = column([[0, 0, 0], [70, 70, 70], [140, 140, 140], [210, 210, 210]]);
    assert.deepEqual(Array.from(resizeBilinearPil(tall, 1, 2).data), [50, 50, 50, 160, 160, 160]);
  });

  test('2→4 upscale interpolates between pixel centres and clamps at the edges', () => {
    const out = resizeBilinearPil(row([[0, 200, 40], [200, 0, 40]]), 4, 1);
    assert.deepEqual(Array.from(out.data), [0, 200, 40, 50, 150, 40, 150, 50, 40, 200, 0, 40]);
  });

  test('constant images stay constant; same size returns an equal copy', () => {
    for (const [w, h, ow, oh] of [[50, 30, 7, 13], [13, 9, 128, 128], [128, 128, 33, 128]]) {
      const img: RgbImage = { width: w, height: h, data: new Uint8Array(w * h * 3) };
      for (let i = 0; i < w * h; i++) img.data.set([0, 255, 173], i * 3);
      const out = resizeBilinearPil(img, ow, oh);
      for (let i = 0; i < ow * oh; i++) assert.deepEqual(Array.from(out.data.subarray(3 * i, 3 * i + 3)), [0, 255, 173]);
    }
    const img = randomImage(9, 5, 10);
    const same = resizeBilinearPil(img, 9, 5);
    assert.deepEqual(same.data, img.data);
    assert.notEqual(same.data, img.data);
  });

  test('matches an independent double-precision reference within one level', () => {
    const cases: Array<[number, number, number, number, number]> = [
      [64, 64, 16, 16, 11],  // integer downscale
      [61, 61, 16, 16, 12],  // fractional downscale
      [100, 37, 23, 41, 13], // down one axis, up the other
      [12, 9, 40, 31, 14],   // upscale
      [200, 5, 8, 5, 15],    // horizontal only, large factor
      [5, 77, 5, 9, 16],     // vertical only
    ];
    for (const [w, h, ow, oh, seed] of cases) {
      for (const img of [randomImage(w, h, seed), texturedImage(w, h, seed)]) {
        const out = resizeBilinearPil(img, ow, oh);
        const ref = referenceResize(img, ow, oh);
        let maxDiff = 0;
        let exact = 0;
        for (let i = 0; i < ref.length; i++) {
          const d = Math.abs(out.data[i] - Math.round(ref[i]));
          maxDiff = Math.max(maxDiff, d);
          if (d === 0) exact++;
        }
        const label = `${w}×${h} → ${ow}×${oh}`;
        assert.ok(maxDiff <= 1, `${label}: max difference ${maxDiff}`);
        assert.ok(exact / ref.length > 0.8, `${label}: only ${exact}/${ref.length} exact`);
      }
    }
  });

  test('a single-pass resize has no intermediate rounding, so it equals the reference exactly', () => {
    // Horizontal only: one rounding in Pillow (fixed point, half up) vs Math.round of the real mean.
    const img = randomImage(150, 3, 17);
    const out = resizeBilinearPil(img, 128, 3);
    const ref = referenceResize(img, 128, 3);
    for (let i = 0; i < ref.length; i++) {
      // Fixed-point weights may flip a value lying within ~1e-4 of .5; none of these do.
      if (Math.abs((ref[i] % 1) - 0.5) < 1e-3) continue;
      assert.equal(out.data[i], Math.round(ref[i]), `value ${i}`);
    }
  });
});

// ---------- float conversion ----------

describe('toFloatCHW / fromFloatCHW', () => {
  test('channel-first layout, byte / 255 in float32', () => {
    const img = row([[0, 128, 255], [1, 2, 3]]);
    const f = toFloatCHW(img);
    assert.deepEqual(Array.from(f), [0, 1, 128, 2, 255, 3].map((v) => Math.fround(v / 255)));
    const batch = new Float32Array(2 + 12);
    toFloatCHW(img, batch, 2);
    toFloatCHW(img, batch, 8);
    assert.deepEqual(Array.from(batch.subarray(2, 8)), Array.from(f));
    assert.deepEqual(Array.from(batch.subarray(8)), Array.from(f));
    assert.throws(() => toFloatCHW(img, batch, 9), /do not fit/);
  });

  test('every byte survives the round trip', () => {
    const img: RgbImage = { width: 256, height: 1, data: new Uint8Array(768) };
    for (let v = 0; v < 256; v++) img.data.set([v, 255 - v, (v * 7) & 255], v * 3);
    assert.deepEqual(fromFloatCHW(toFloatCHW(img), 256, 1).data, img.data);
  });

  test('truncates like torch mul(255).byte(), clamps out-of-range, refuses NaN', () => {
    const f = Float32Array.from([0.999, 0.5, 1 / 255, -0.1, 1.5, 0.0039]);
    // R plane: 0.999, 0.5; G: 1/255, -0.1; B: 1.5, 0.0039 (2×1 image).
    const img = fromFloatCHW(f, 2, 1);
    assert.deepEqual(Array.from(img.data), [254, 1, 255, 127, 0, 0]);
    assert.throws(() => fromFloatCHW(Float32Array.from([0, 0, NaN]), 1, 1), (e: unknown) => e instanceof ImageError && /NaN/.test(e.message));
    assert.throws(() => fromFloatCHW(new Float32Array(5), 1, 2), /needs 6 values/);
  });
});

// ---------- grid ----------

describe('composeGrid', () => {
  const solid = (w: number, h: number, rgb: number[]): RgbImage => {
    const data = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) data.set(rgb, i * 3);
    return { width: w, height: h, data };
  };

  test('places images row by row with padding around and between them', () => {
    const imgs = [solid(3, 2, [255, 0, 0]), solid(3, 2, [0, 255, 0]), solid(3, 2, [0, 0, 255])];
    const g = composeGrid(imgs, { columns: 2, padding: 1, background: [9, 9, 9] });
    assert.deepEqual([g.width, g.height], [2 * (3 + 1) + 1, 2 * (2 + 1) + 1]);
    assert.deepEqual(pixel(g, 0, 0), [9, 9, 9]);
    assert.deepEqual(pixel(g, 1, 1), [255, 0, 0]);
    assert.deepEqual(pixel(g, 3, 2), [255, 0, 0]);
    assert.deepEqual(pixel(g, 4, 1), [9, 9, 9]);
    assert.deepEqual(pixel(g, 5, 1), [0, 255, 0]);
    assert.deepEqual(pixel(g, 7, 2), [0, 255, 0]);
    assert.deepEqual(pixel(g, 1, 3), [9, 9, 9]);
    assert.deepEqual(pixel(g, 1, 4), [0, 0, 255]);
    assert.deepEqual(pixel(g, 5, 4), [9, 9, 9]); // empty fourth cell
    assert.deepEqual(pixel(g, 8, 6), [9, 9, 9]);
  });

  test('defaults follow torchvision make_grid: up to 8 per row, padding 2, black', () => {
    const imgs = Array.from({ length: 10 }, (_, i) => solid(4, 4, [i * 20, 0, 0]));
    const g = composeGrid(imgs);
    assert.deepEqual([g.width, g.height], [8 * 6 + 2, 2 * 6 + 2]);
    assert.deepEqual(pixel(g, 2 + 7 * 6, 2), [140, 0, 0]);
    assert.deepEqual(pixel(g, 2 + 6, 2 + 6), [180, 0, 0]);
    assert.deepEqual(pixel(g, 1, 1), [0, 0, 0]);
    const three = composeGrid(imgs.slice(0, 3));
    assert.deepEqual([three.width, three.height], [3 * 6 + 2, 6 + 2]);
  });

  test('refuses mixed sizes and empty input', () => {
    assert.throws(() => composeGrid([solid(2, 2, [0, 0, 0]), solid(3, 2, [0, 0, 0])]), /image 1 is 3×2/);
    assert.throws(() => composeGrid([]), /no images/);
  });
});

describe('sharp loading', () => {
  test('the Node runtime loads sharp (libvips) with the first image it reads, not when imported', async () => {
    // a fresh process: libvips is in its memory map once sharp is loaded
    const runtime = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'runtime', 'node', 'index.ts');
    const script = `
      import { readFileSync } from 'node:fs';
      const vips = () => /libvips/.test(readFileSync('/proc/self/maps', 'utf8'));
      const { encodePng, readImage } = await import(${JSON.stringify(runtime)});
      const before = vips();
      await readImage(await encodePng({ width: 1, height: 1, data: new Uint8Array(3) }));
      console.log(JSON.stringify({ before, after: vips() }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
    assert.deepEqual(JSON.parse(stdout), { before: false, after: true });
  });
});
