/**
 * Rudolph: the library's front door. `Rudolph.fromPretrained(presetOrDirOrRepo)` resolves and
 * downloads what it needs (model, tokenizer, VQGAN), opens the converted model, and exposes
 * every task as a method taking an options object and returning plain data.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ConfigError, InputError, throwIfAborted } from './errors.js';
import { preprocessImage, type RgbImage } from './image/index.js';
import { resolveModelFiles, type LoadProgress, type ModelSourceOptions } from './model-files.js';
import type { RudolphConfig } from './model/config.js';
import { PRESET_NAMES } from './presets.js';
import { openConvertedModel } from './model/converted-cache.js';
import type { LinearPrecision } from './model/graph-context.js';
import type { RudolphModel } from './model/rudolph-model.js';
import type { ExecutionProvider } from './onnx/session.js';
import { caption, generateCaptions, type CaptionOptions, type GenerateCaptionsOptions } from './tasks/caption.js';
import { classify, type ClassifyOptions } from './tasks/classify.js';
import type { TaskContext } from './tasks/context.js';
import { dream, type DreamOptions } from './tasks/dream.js';
import { generateText, type GenerateTextOptions } from './tasks/generate-text.js';
import { borderCells, generateImageTokens, type Borders, type GenerateImageTokensOptions, type ImagePrompt } from './tasks/image-tokens.js';
import { rankImages, rankTexts, type RankImagesOptions, type RankTextsOptions } from './tasks/rank.js';
import type { TextTokenizer } from './tokenizer/text-encoding.js';
import { Vqgan } from './vqgan/index.js';

export type { LoadProgress };

export interface FromPretrainedOptions extends ModelSourceOptions {
  /** onnxruntime intra-op threads (default: all cores) */
  threads?: number;
  precision?: LinearPrecision;
  executionProviders?: ExecutionProvider[];
  /** rows per model call (default 8) */
  batchSize?: number;
}

export interface RudolphInfo {
  source: string;
  config: RudolphConfig['params'];
  specialTokens: RudolphConfig['specialTokens'];
  presets: string[];
  files: { weights: string; tokenizer: string; vqgan: string | null; converted: string };
  cacheDir: string;
  runtime: { onnxruntime: string; executionProviders: string[]; threads: number | 'auto'; precision: LinearPrecision };
  batchSize: number;
}

export class Rudolph {
  private constructor(
    private readonly ctx: TaskContext & { vqgan?: Vqgan },
    private readonly details: RudolphInfo,
  ) {}

  get config(): RudolphConfig { return this.ctx.cfg; }
  get tokenizer(): TextTokenizer { return this.ctx.tokenizer; }
  get model(): RudolphModel { return this.ctx.model; }
  get vqgan(): Vqgan | undefined { return this.ctx.vqgan; }
  info(): RudolphInfo { return structuredClone(this.details); }

  static async fromPretrained(source: string, opts: FromPretrainedOptions = {}): Promise<Rudolph> {
    const batchSize = opts.batchSize ?? 8;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize must be a positive integer, got ${batchSize}`);
    if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 1)) throw new InputError(`threads must be a positive integer, got ${opts.threads}`);
    const { cfg, weightsFile, tokenizer, tokenizerFile, vqganFile, cacheDir } = await resolveModelFiles(source, opts);
    throwIfAborted(opts.signal);
    const session = { threads: opts.threads, executionProviders: opts.executionProviders, precision: opts.precision };
    const root = path.join(cacheDir, '.rudolph-ts', 'converted');
    const { model, dir } = await openConvertedModel(cfg, weightsFile, {
      ...session, root,
      onStage: (stage, detail) => opts.onProgress?.({ stage: stage === 'convert' ? 'convert' : 'load', file: detail }),
    });
    let vqgan: Vqgan | undefined;
    try {
      if (vqganFile) {
        opts.onProgress?.({ stage: 'load', file: vqganFile });
        vqgan = await Vqgan.fromCheckpoint(vqganFile, { threads: opts.threads, executionProviders: opts.executionProviders });
        if (vqgan.factor !== 8 || vqgan.cfg.nEmbed < cfg.imageVocab) {
          throw new ConfigError(`VQGAN ${vqganFile} (factor ${vqgan.factor}, ${vqgan.cfg.nEmbed} codes) does not match the model's ${cfg.imageVocab} image tokens at ×8`);
        }
      }
    } catch (e) {
      await vqgan?.release();
      await model.release();
      throw e;
    }
    const info: RudolphInfo = {
      source, config: cfg.params, specialTokens: cfg.specialTokens, presets: PRESET_NAMES,
      files: { weights: weightsFile, tokenizer: tokenizerFile, vqgan: vqganFile, converted: dir },
      cacheDir,
      runtime: { onnxruntime: ort.env.versions.node ?? 'unknown', executionProviders: [...(opts.executionProviders ?? []), 'cpu'], threads: opts.threads ?? 'auto', precision: opts.precision ?? 'fp32' },
      batchSize,
    };
    return new Rudolph({ model, cfg, tokenizer, vqgan, batchSize }, info);
  }

  /** Text → n² image token ids per candidate (no decoding). */
  generateImageTokens(o: GenerateImageTokensOptions) { return generateImageTokens(this.ctx, o); }
  /** Text → images: candidates generated, reranked by the text, the best decoded. */
  dream(o: DreamOptions) { return dream(this.ctx, o); }
  rankImages(o: RankImagesOptions) { return rankImages(this.ctx, o); }
  rankTexts(o: RankTextsOptions) { return rankTexts(this.ctx, o); }
  /** Image → captions reranked by the image. */
  caption(o: CaptionOptions) { return caption(this.ctx, o); }
  generateCaptions(o: GenerateCaptionsOptions) { return generateCaptions(this.ctx, o); }
  classify(o: ClassifyOptions) { return classify(this.ctx, o); }
  generateText(o: GenerateTextOptions) { return generateText(this.ctx, o); }

  /**
   * An image prompt for generation: the image's token ids and the cells kept by `borders`.
   * `cropFirst` encodes only the top strip (only an `up` border is allowed then).
   */
  async imagePrompt(image: RgbImage, borders: Borders, cropFirst = false): Promise<ImagePrompt> {
    const vqgan = this.requireVqgan('image prompts');
    const { n } = this.ctx.cfg;
    const square = preprocessImage(image, 8 * n);
    if (!cropFirst) return { ids: await vqgan.encode([square]), cells: borderCells(n, borders) };
    if ((borders.down ?? 0) || (borders.left ?? 0) || (borders.right ?? 0)) throw new InputError('image prompt: cropFirst takes only an up border');
    const up = borders.up ?? 0;
    if (up < 1 || up > n) throw new InputError(`image prompt: cropFirst needs an up border in [1, ${n}], got ${up}`);
    const strip: RgbImage = { width: square.width, height: up * 8, data: square.data.subarray(0, square.width * up * 8 * 3) };
    return { ids: await vqgan.encode([strip]), cells: Array.from({ length: up * n }, (_, i) => i) };
  }

  async release(): Promise<void> {
    await this.ctx.model.release();
    await this.ctx.vqgan?.release();
  }

  private requireVqgan(what: string): Vqgan {
    if (!this.ctx.vqgan) throw new InputError(`${what} need a VQGAN; load the model with one`);
    return this.ctx.vqgan;
  }
}

