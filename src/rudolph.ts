/**
 * Rudolph: the library's front door. `Rudolph.fromPretrained(presetOrDirOrRepo)` resolves and
 * fetches what it needs (model, tokenizer, VQGAN) through the runtime's loader and exposes every
 * task as a method taking an options object and returning plain data.
 */
import { InputError } from './errors.js';
import { preprocessImage, type RgbImage } from './image/index.js';
import type { FromPretrainedOptions, LoadedModel, LoadProgress, RudolphInfo } from './load-options.js';
import type { RudolphConfig } from './model/config.js';
import type { RudolphModel } from './model/rudolph-model.js';
import { runtime } from './runtime/current.js';
import { caption, generateCaptions, type CaptionOptions, type GenerateCaptionsOptions } from './tasks/caption.js';
import { classify, type ClassifyOptions } from './tasks/classify.js';
import type { TaskContext } from './tasks/context.js';
import { dream, type DreamOptions } from './tasks/dream.js';
import { generateText, type GenerateTextOptions } from './tasks/generate-text.js';
import { borderCells, generateImageTokens, type Borders, type GenerateImageTokensOptions, type ImagePrompt } from './tasks/image-tokens.js';
import { rankImages, rankTexts, type RankImagesOptions, type RankTextsOptions } from './tasks/rank.js';
import type { TextTokenizer } from './tokenizer/text-encoding.js';
import type { Vqgan } from './vqgan/vqgan-model.js';

export type { FromPretrainedOptions, LoadProgress, RudolphInfo };

export class Rudolph {
  private readonly ctx: TaskContext & { vqgan?: Vqgan };
  private readonly details: RudolphInfo;

  /** A facade over a loaded model (what `fromPretrained` builds; runtimes and tests may build one directly). */
  constructor(loaded: LoadedModel) {
    this.ctx = { model: loaded.model, cfg: loaded.cfg, tokenizer: loaded.tokenizer, vqgan: loaded.vqgan, batchSize: loaded.batchSize };
    this.details = loaded.info;
  }

  get config(): RudolphConfig { return this.ctx.cfg; }
  get tokenizer(): TextTokenizer { return this.ctx.tokenizer; }
  get model(): RudolphModel { return this.ctx.model; }
  get vqgan(): Vqgan | undefined { return this.ctx.vqgan; }
  info(): RudolphInfo { return structuredClone(this.details); }

  /** A preset name, a model folder or a hub repo id; see `FromPretrainedOptions`. */
  static async fromPretrained(source: string, opts: FromPretrainedOptions = {}): Promise<Rudolph> {
    return new Rudolph(await runtime().loadPretrained(source, opts));
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

