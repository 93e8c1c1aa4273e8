/**
 * The browser image codec: `createImageBitmap` decodes, an OffscreenCanvas reads the pixels and
 * writes PNGs (works in windows and workers). The size is checked from the file's header (image-size)
 * before anything is decoded.
 *
 * Against `PIL.Image.open(f).convert('RGB')` (what the Node codec follows):
 * - opaque images decode to the same bytes (PNG, GIF, BMP and lossless WebP exactly; JPEG within
 *   the decoder's rounding, as between any two JPEG decoders);
 * - ICC profiles are ignored (`colorSpaceConversion: 'none'`), as in PIL;
 * - Chromium applies EXIF orientation whatever the options say (the `'none'` value now means
 *   'from-image'), PIL does not: a phone photo stored sideways is processed upright here;
 * - alpha is dropped, but a canvas keeps colours premultiplied, so semi-transparent pixels may
 *   shift by rounding and fully transparent ones read black; PIL keeps their stored RGB.
 */
import { imageSize } from 'image-size';
import { InputError } from '../../errors.js';
import { ImageError } from '../../image/errors.js';
import { DEFAULT_MAX_PIXELS } from '../../image/limits.js';
import { assertRgbImage, type RgbImage } from '../../image/rgb-image.js';
import type { DecodeImageOptions } from '../types.js';

function canvas2d(width: number, height: number): OffscreenCanvasRenderingContext2D {
  const ctx = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true, alpha: false });
  if (!ctx) throw new ImageError(`cannot get a 2D canvas of ${width}×${height}`);
  return ctx;
}

export async function decodeImageWeb(bytes: Uint8Array, opts: DecodeImageOptions = {}): Promise<RgbImage> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!Number.isInteger(maxPixels) || maxPixels <= 0) throw new InputError(`maxPixels must be a positive integer, got ${maxPixels}`);
  const name = opts.name ?? `image data (${bytes.length} bytes)`;
  if (bytes.length === 0) throw new ImageError(`${name}: empty input (0 bytes), not an image`);
  let header: { width?: number; height?: number };
  try {
    header = imageSize(bytes);
  } catch (e) {
    throw new ImageError(`${name}: not a readable image (${(e as Error).message})`, { cause: e });
  }
  const { width, height } = header;
  if (!width || !height) throw new ImageError(`${name}: the image header gives no size`);
  if (width * height > maxPixels) {
    throw new ImageError(`${name}: ${width}×${height} is ${(width * height / 1e6).toFixed(1)} megapixels, over the limit of ${(maxPixels / 1e6).toFixed(1)} (maxPixels ${maxPixels})`);
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>]), { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  } catch (e) {
    throw new ImageError(`${name}: cannot decode image (${(e as Error).message})`, { cause: e });
  }
  try {
    const w = bitmap.width, h = bitmap.height;
    if (w * h > maxPixels) throw new ImageError(`${name}: decoded to ${w}×${h}, over maxPixels ${maxPixels}`);
    const ctx = canvas2d(w, h);
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, w, h, { colorSpace: 'srgb' }).data;
    const data = new Uint8Array(w * h * 3);
    for (let i = 0, o = 0; o < data.length; i += 4, o += 3) {
      data[o] = rgba[i]; data[o + 1] = rgba[i + 1]; data[o + 2] = rgba[i + 2];
    }
    return { width: w, height: h, data };
  } finally {
    bitmap.close();
  }
}

/** Lossless PNG of an RGB image (8-bit RGB through an opaque canvas). */
export async function encodePngWeb(image: RgbImage): Promise<Uint8Array> {
  assertRgbImage(image);
  const { width, height, data } = image;
  const ctx = canvas2d(width, height);
  const rgba = new ImageData(width, height);
  for (let i = 0, o = 0; i < data.length; i += 3, o += 4) {
    rgba.data[o] = data[i]; rgba.data[o + 1] = data[i + 1]; rgba.data[o + 2] = data[i + 2]; rgba.data[o + 3] = 255;
  }
  ctx.putImageData(rgba, 0, 0);
  try {
    const blob = await ctx.canvas.convertToBlob({ type: 'image/png' });
    return new Uint8Array(await blob.arrayBuffer());
  } catch (e) {
    throw new ImageError(`cannot encode a ${width}×${height} image as PNG (${(e as Error).message})`, { cause: e });
  }
}
