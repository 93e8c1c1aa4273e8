/** What decoding needs: the model, its config and the tokenizer (to turn generated ids into text). */
import type { RudolphConfig } from '../model/config.js';
import type { RudolphModel } from '../model/rudolph-model.js';
import type { TextTokenizer } from '../tokenizer/text-encoding.js';

export interface ModelContext {
  model: RudolphModel;
  cfg: RudolphConfig;
  tokenizer: TextTokenizer;
}
