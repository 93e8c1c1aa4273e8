/** Default cap on width × height of a decoded image, against decompression bombs: 100 megapixels. */
export const DEFAULT_MAX_PIXELS = 100_000_000;
