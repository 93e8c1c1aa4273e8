/**
 * What `Rudolph.fromPretrained` takes and reports, whatever the runtime: where the model comes
 * from (preset, folder, hub repo; tokenizer and VQGAN overrides), how it runs (threads,
 * precision, execution providers, batch size), progress and cancellation.
 */
import type { RudolphConfig } from './model/config.js';
import type { LinearPrecision } from './model/graph-context.js';
import type { RudolphModel } from './model/rudolph-model.js';
import type { ExecutionProvider } from './runtime/types.js';
import type { ImageUpscaler } from './tasks/context.js';
import type { TextTokenizer } from './tokenizer/text-encoding.js';
import type { Vqgan } from './vqgan/vqgan-model.js';

export interface LoadProgress {
  stage: 'download' | 'convert' | 'load';
  /** file being downloaded / converted / loaded */
  file: string;
  loaded?: number;
  total?: number | null;
  bytesPerSecond?: number;
  etaSeconds?: number | null;
}

/** Where a model's files come from. */
export interface ModelSourceOptions {
  /** hub cache folder (default: HF_HUB_CACHE / HF_HOME/hub / ~/.cache/huggingface/hub) */
  cacheDir?: string;
  revision?: string;
  endpoint?: string;
  token?: string;
  offline?: boolean;
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
  /** a bpe.model file, or any TextTokenizer (default: the folder's / repo's bpe.model, else the hub's) */
  tokenizer?: string | TextTokenizer;
  /** a VQGAN checkpoint file or folder; false = no image codec (text-only use) */
  vqgan?: string | false;
  /**
   * LoRA adapters in the PEFT format (a folder or a hub repo id each), merged into the weights
   * in order when the model is converted (the merged graph is cached by base + adapters)
   */
  adapters?: string[];
  /**
   * Real-ESRGAN weights for `upscale` and `dream({ upscale })`: a folder holding
   * `RealESRGAN_x{2,4,8}.pth`, or false (no super-resolution). Default: the hub's
   * `sberbank-ai/Real-ESRGAN`, each scale fetched on its first use (never at load).
   */
  upscaler?: string | false;
  /**
   * Per-request timeout for downloads: connect + response headers, then each gap between body
   * chunks, in ms (default: $HF_HUB_DOWNLOAD_TIMEOUT seconds, else 10 s).
   */
  timeoutMs?: number;
  /** Failed download attempts in a row that bring no new bytes before giving up (default 5). */
  retries?: number;
  /** Download retries of one file in all, progress or not (default 20). */
  retryBudget?: number;
}

/** How a loaded model runs. */
export interface RuntimeOptions {
  /** onnxruntime intra-op threads (default: all cores) */
  threads?: number;
  precision?: LinearPrecision;
  executionProviders?: ExecutionProvider[];
  /** rows per model call (default 8) */
  batchSize?: number;
}

export interface FromPretrainedOptions extends ModelSourceOptions, RuntimeOptions {}

export interface RudolphInfo {
  source: string;
  config: RudolphConfig['params'];
  specialTokens: RudolphConfig['specialTokens'];
  presets: string[];
  files: { weights: string; tokenizer: string; vqgan: string | null; converted: string; adapters: string[] };
  cacheDir: string;
  runtime: { name: string; onnxruntime: string; executionProviders: string[]; threads: number | 'auto'; precision: LinearPrecision };
  batchSize: number;
}

/** What a runtime's model loader hands the facade. */
export interface LoadedModel {
  model: RudolphModel;
  cfg: RudolphConfig;
  tokenizer: TextTokenizer;
  vqgan?: Vqgan;
  /** super-resolution, opened lazily (absent with `upscaler: false`) */
  upscaler?: ImageUpscaler;
  batchSize: number;
  info: RudolphInfo;
}

/** Resolves, fetches and opens a model on one runtime (Node: hub cache + converted graph on disk). */
export type ModelLoader = (source: string, opts: FromPretrainedOptions) => Promise<LoadedModel>;
