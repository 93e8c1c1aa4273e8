/** Image bytes of every format sharp reads → readImage (the header check, then the decode) and preprocessImage. */
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { preprocessImage } from '../../src/image/index.js';
import { readImage } from '../../src/runtime/node/image-files.js';
import { mutate } from '../lib/mutate.js';
import type { FuzzRng } from '../lib/rng.js';
import type { FuzzTarget } from '../target.js';

let seeds: Uint8Array[] = [];

/** A PNG whose IHDR claims other dimensions (CRC fixed up, so only the size lies). */
function forgePng(rng: FuzzRng, png: Uint8Array): Uint8Array {
  const out = Buffer.from(png);
  if (out.length < 33 || out.toString('latin1', 12, 16) !== 'IHDR') return out;
  const dim = (): number => rng.pick([0, 1, 2048, 8192, 10_000, 32_768, 65_535, 100_000, 2 ** 31 - 1, rng.interestingInt() >>> 0]);
  out.writeUInt32BE(dim(), 16);
  out.writeUInt32BE(dim(), 20);
  if (rng.chance(0.3)) out[24] = rng.pick([1, 2, 4, 8, 16, 3]); // bit depth
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29);
  return out;
}

/** A JPEG whose SOF marker claims other dimensions. */
function forgeJpeg(rng: FuzzRng, jpeg: Uint8Array): Uint8Array {
  const out = Buffer.from(jpeg);
  for (let i = 2; i + 9 < out.length; i++) {
    if (out[i] === 0xff && (out[i + 1] === 0xc0 || out[i + 1] === 0xc2)) {
      out.writeUInt16BE(rng.pick([0, 1, 65_535, rng.int(65_536)]), i + 5);
      out.writeUInt16BE(rng.pick([0, 1, 65_535, rng.int(65_536)]), i + 7);
      break;
    }
  }
  return out;
}

export const target: FuzzTarget = {
  name: 'image',
  description: 'image bytes (PNG, JPEG, WebP, GIF, TIFF, AVIF, ...) → readImage and preprocessImage',
  async setup() {
    const base = (w: number, h: number, channels: 3 | 4): ReturnType<typeof sharp> => sharp({ create: { width: w, height: h, channels, background: { r: 200, g: 40, b: 90, alpha: 0.5 } } });
    seeds = await Promise.all([
      base(16, 16, 3).png().toBuffer(),
      base(33, 17, 4).png().toBuffer(),
      base(24, 24, 3).grayscale().png().toBuffer(),
      base(20, 20, 3).png({ palette: true }).toBuffer(),
      base(12, 12, 3).toColourspace('rgb16').png().toBuffer(),
      base(32, 24, 3).jpeg().toBuffer(),
      base(32, 24, 3).jpeg({ progressive: true }).toBuffer(),
      base(16, 16, 4).webp().toBuffer(),
      base(16, 16, 4).webp({ lossless: true }).toBuffer(),
      base(16, 16, 3).gif().toBuffer(),
      base(16, 16, 3).tiff().toBuffer(),
      base(16, 16, 3).avif({ effort: 0 }).toBuffer(),
    ]);
  },
  input(rng) {
    const seed = rng.pick(seeds);
    const mode = rng.next();
    if (mode < 0.15) return forgePng(rng, seeds[rng.int(5)]);
    if (mode < 0.25) return forgeJpeg(rng, seeds[rng.pick([5, 6])]);
    if (mode < 0.3) return rng.bytes(rng.size(4096));
    return mutate(rng, seed, rng.pick(seeds));
  },
  async run(input) {
    preprocessImage(await readImage(input), 32);
  },
};
