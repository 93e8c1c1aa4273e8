import { RudolphError } from '../errors.js';

/** An image that cannot be read, decoded, encoded or written, or an RgbImage whose fields disagree. */
export class ImageError extends RudolphError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('IMAGE', message, options);
    this.name = 'ImageError';
  }
}
