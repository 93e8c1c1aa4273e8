/** What every task runs on: the model, its config, the tokenizer, the image codec and the batch size. */
import type { ModelContext } from '../generation/context.js';
import type { ImageTokenizer } from '../vqgan/vqgan-model.js';

export interface TaskContext extends ModelContext {
  vqgan?: ImageTokenizer;
  /** rows per model call */
  batchSize: number;
}
