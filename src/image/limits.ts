/**
 * Default cap on width × height of a decoded image, against decompression bombs: 8192 × 6144
 * (50 megapixels, a 48 MP photo fits). A decode costs about 4 bytes a pixel at its peak (the RGB
 * result and the decoder's buffers: a 275-byte JPEG claiming 65 MP took 266 MB), so one stays
 * near 200 MB; RUDOLPH looks at 128–384 pixels a side anyway.
 */
export const DEFAULT_MAX_PIXELS = 8192 * 6144;

/**
 * Longest side accepted: the decoder's row buffers grow with the width, and a 115-byte PNG
 * claiming 16,777,216 × 1 pixels cost 336 MB and 4 s before its data ran out.
 */
export const MAX_IMAGE_SIDE = 32768;
