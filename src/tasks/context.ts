/** What every task runs on: the model, its config, the tokenizer, the image codec, super-resolution and the batch size. */
import type { ModelContext } from '../generation/context.js';
import type { RgbImage } from '../image/index.js';
import type { UpscaleScale } from '../upscale/config.js';
import type { RunControl } from '../util/progress.js';
import type { ImageTokenizer } from '../vqgan/vqgan-model.js';

/**
 * Super-resolution as tasks use it: Real-ESRGAN's `SuperResolution` (upscale/), which opens the
 * network of a scale (and fetches its weights) on first use.
 */
export interface ImageUpscaler {
  upscale(req: { image: RgbImage; scale: UpscaleScale } & RunControl): Promise<RgbImage>;
  release(): Promise<void>;
}

export interface TaskContext extends ModelContext {
  vqgan?: ImageTokenizer;
  /** absent when the model was loaded with `upscaler: false` */
  upscaler?: ImageUpscaler;
  /** rows per model call */
  batchSize: number;
}

/** What a task that needs no RUDOLPH model runs on (`standalone` in its spec): the CLI opens only this. */
export type StandaloneContext = Pick<TaskContext, 'upscaler' | 'vqgan'>;
