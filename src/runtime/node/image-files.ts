/**
 * The Node image codec: reading images into 8-bit RGB and writing PNGs, through sharp (libvips).
 *
 * Decoding follows what the official code gets from `PIL.Image.open(f).convert('RGB')`:
 * - alpha is dropped, not composited (PIL's RGBA/LA → RGB just discards the band);
 *   palettes are expanded and their transparency ignored; grey is copied to R, G and B;
 * - EXIF orientation is NOT applied (PIL does not rotate on open/convert, and the
 *   official code never calls `ImageOps.exif_transpose`), so a phone photo stored sideways
 *   is processed sideways, as the official code does;
 * - embedded ICC profiles are ignored (PIL's convert ignores them too);
 * - only the first frame of an animated image is read (as PIL's open does);
 * - truncated or corrupt data is an error (as in PIL), but decoder warnings that PIL also
 *   tolerates (e.g. extraneous bytes in a JPEG) are not (`failOn: 'error'`);
 * - 16-bit images keep their high byte. PIL does the same for 16-bit RGB(A) PNGs but clips
 *   16-bit greyscale at 255 (its I;16 → RGB conversion), turning most such images white;
 *   we scale them like colour ones instead. CMYK images go through libvips' default CMYK
 *   profile rather than PIL's naive formula.
 */
import { writeFile } from 'node:fs/promises';
import type Sharp from 'sharp';
import { InputError } from '../../errors.js';
import { ImageError } from '../../image/errors.js';
import { decodeBytesPerPixel, DEFAULT_MAX_PIXELS, MAX_IMAGE_SIDE, REFERENCE_BYTES_PER_PIXEL } from '../../image/limits.js';
import { assertRgbImage, type RgbImage } from '../../image/rgb-image.js';
import { readBoundedFile, writeAtomically } from '../../io/files.js';
import type { DecodeImageOptions } from '../types.js';

export type ReadImageOptions = DecodeImageOptions;

/**
 * sharp is loaded by the first image read or written, not with the runtime: libvips adds ~22 MB
 * to a process's RSS (node 42 MB, onnxruntime +13 MB, sharp +22 MB when imported), which text
 * tasks, scoring and a bare model session do not need.
 */
let sharpModule: Promise<typeof Sharp> | undefined;
const loadSharp = () => (sharpModule ??= import('sharp').then((m) => m.default));

/** Width and height from an image's header (nothing decoded); ImageError when there is no readable header. */
export async function imageDimensions(bytes: Uint8Array, name: string): Promise<{ width: number; height: number }> {
  if (bytes.length === 0) throw new ImageError(`${name}: empty input (0 bytes), not an image`);
  let width: number | undefined;
  let height: number | undefined;
  try {
    ({ width, height } = await (await loadSharp())(bytes, { limitInputPixels: false }).metadata());
  } catch (err) {
    throw new ImageError(`${name}: not a readable image (${errorText(err)})`, { cause: err });
  }
  if (!width || !height) throw new ImageError(`${name}: the image header gives no size`);
  return { width, height };
}

/** Decodes PNG, JPEG, WebP, GIF, TIFF, AVIF... (whatever sharp reads) into 8-bit RGB. */
export async function readImage(input: string | Uint8Array, opts: ReadImageOptions = {}): Promise<RgbImage> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!Number.isInteger(maxPixels) || maxPixels <= 0) {
    throw new InputError(`maxPixels must be a positive integer, got ${maxPixels}`);
  }
  const bytes = typeof input === 'string' ? await readImageFile(input, { name: opts.name, maxPixels }) : input;
  const name = opts.name
    ?? (typeof input === 'string' ? input : `image data (${bytes.length} bytes)`);
  if (bytes.length === 0) throw new ImageError(`${name}: empty input (0 bytes), not an image`);

  let width: number | undefined;
  let height: number | undefined;
  let format: string | undefined;
  let depth: string | undefined;
  try {
    ({ width, height, format, depth } = await (await loadSharp())(bytes, { limitInputPixels: false }).metadata());
  } catch (err) {
    throw new ImageError(`${name}: not a readable image (${errorText(err)})`, { cause: err });
  }
  if (!width || !height) throw new ImageError(`${name}: the image header gives no size`);
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    throw new ImageError(`${name}: ${width}×${height} has a side over ${MAX_IMAGE_SIDE} pixels, the longest accepted`);
  }
  // maxPixels counts JPEG/PNG pixels; a format whose decoder needs more memory a pixel gets fewer
  const cost = decodeBytesPerPixel(format, depth);
  const limit = Math.max(1, Math.floor((maxPixels * REFERENCE_BYTES_PER_PIXEL) / cost));
  if (width * height > limit) {
    const kind = cost === REFERENCE_BYTES_PER_PIXEL ? '' : ` for ${depth === 'uchar' || !depth ? '' : `${depth} `}${(format ?? 'this format').toUpperCase()}, whose decoder needs ${cost} bytes a pixel`;
    throw new ImageError(
      `${name}: ${width}×${height} is ${megapixels(width * height)} megapixels, over the limit of ` +
      `${megapixels(limit)}${kind} (maxPixels ${maxPixels})`);
  }
  // Every 8×8 block of a JPEG costs at least a bit, so it needs over pixels/512 bytes: a smaller
  // one is truncated or its header lies, and libjpeg would fill the missing rows at full cost.
  if (format === 'jpeg' && bytes.length < (width * height) / 1024) {
    throw new ImageError(`${name}: a ${bytes.length}-byte JPEG cannot hold ${width}×${height} pixels (truncated, or the header lies)`);
  }

  let decoded;
  try {
    decoded = await (await loadSharp())(bytes, { failOn: 'error', limitInputPixels: limit, ignoreIcc: true })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new ImageError(`${name}: cannot decode image (${errorText(err)})`, { cause: err });
  }
  const { data, info } = decoded;
  if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
    throw new ImageError(
      `${name}: decoded to ${info.channels} channels / ${data.length} bytes, expected 8-bit RGB`);
  }
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/**
 * The bytes of an image file: a regular file of at most 4 bytes a pixel of `maxPixels` plus
 * 16 MiB of metadata (an uncompressed RGBA image), so a path to /dev/zero, a FIFO or a huge
 * file is refused before anything is read.
 */
export async function readImageFile(file: string, opts: { name?: string; maxPixels?: number } = {}): Promise<Uint8Array> {
  const label = opts.name ?? file;
  const maxBytes = 4 * (opts.maxPixels ?? DEFAULT_MAX_PIXELS) + 16 * 2 ** 20;
  try {
    return await readBoundedFile(file, maxBytes);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ImageError(`${label}: image file not found`, { cause: err });
    if (code === 'EISDIR' || code === 'ENOTREG') throw new ImageError(`${label}: ${errorText(err)} (not an image file)`, { cause: err });
    if (code === 'EFBIG') throw new ImageError(`${label}: image file is too large (${errorText(err)})`, { cause: err });
    throw new ImageError(`${label}: cannot read image file (${errorText(err)})`, { cause: err });
  }
}

/** Lossless PNG of the image (8-bit RGB, no metadata). */
export async function encodePng(img: RgbImage): Promise<Buffer> {
  assertRgbImage(img);
  try {
    return await (await loadSharp())(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
      .png()
      .toBuffer();
  } catch (err) {
    throw new ImageError(`cannot encode a ${img.width}×${img.height} image as PNG (${errorText(err)})`, { cause: err });
  }
}

/** Writes a PNG atomically: to a temporary name in the same folder, then renamed over `file`. */
export async function writePng(file: string, img: RgbImage): Promise<void> {
  const png = await encodePng(img);
  try {
    await writeAtomically(file, (tmp) => writeFile(tmp, png));
  } catch (err) {
    throw new ImageError(`${file}: cannot write PNG (${errorText(err)})`, { cause: err });
  }
}

function megapixels(pixels: number): string {
  return (pixels / 1e6).toFixed(1);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message.trim() : String(err);
}
