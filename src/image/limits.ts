/**
 * Default cap on width × height of a decoded image, against decompression bombs: 8192 × 6144
 * (50 megapixels, a 48 MP photo fits). It counts pixels of JPEG, PNG or TIFF, whose decode peaks
 * near 4 bytes a pixel (the RGB result and the decoder's buffers), so one stays near 200 MB;
 * costlier formats get proportionally fewer pixels (`decodeBytesPerPixel`). RUDOLPH looks at
 * 128–384 pixels a side anyway.
 */
export const DEFAULT_MAX_PIXELS = 8192 * 6144;

/** The decode cost `maxPixels` is counted in: bytes a pixel at the peak of a JPEG/PNG/TIFF decode. */
export const REFERENCE_BYTES_PER_PIXEL = 4;

/**
 * Peak bytes a pixel while decoding to 8-bit RGB, by format (measured with sharp 0.35 at 9 MP:
 * JPEG/PNG 3.6, TIFF 4, GIF 7.4, SVG 6.9, WebP 10–11.5, AVIF 18.4 and the slowest per pixel);
 * other formats count as the costliest. 16-bit samples add half.
 */
export function decodeBytesPerPixel(format: string | undefined, depth: string | undefined): number {
  const base = ({ jpeg: 4, png: 4, tiff: 4, gif: 8, svg: 8, webp: 16, heif: 24 } as Record<string, number>)[format ?? ''] ?? 24;
  return depth === 'ushort' || depth === 'short' ? base * 1.5 : depth === 'float' || depth === 'double' || depth === 'uint' || depth === 'int' ? base * 3 : base;
}

/**
 * Longest side accepted: the decoder's row buffers grow with the width, and a 115-byte PNG
 * claiming 16,777,216 × 1 pixels cost 336 MB and 4 s before its data ran out.
 */
export const MAX_IMAGE_SIDE = 32768;
