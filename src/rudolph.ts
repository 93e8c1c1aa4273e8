/**
 * Rudolph: the library's front door. `Rudolph.fromPretrained(presetOrDirOrRepo)` resolves and
 * downloads what it needs (model, tokenizer, VQGAN), opens the converted model, and exposes
 * every task as a method taking an options object and returning plain data.
 */
import { existsSync, promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ConfigError, InputError, RudolphError, throwIfAborted } from './errors.js';
import { DownloadError, downloadFile, PRESET_FILES, resolveCachedFile, resolveHubSettings, TOKENIZER_FILE, VQGAN_FILE, type DownloadOptions, type DownloadProgress } from './hub/index.js';
import { isPresetName, PRESET_NAMES, presetConfig, type RudolphConfig } from './model/config.js';
import { openConvertedModel } from './model/converted-cache.js';
import type { LinearPrecision } from './model/graph-context.js';
import { findWeightsFile, readConfigFile, WEIGHT_FILES } from './model/load.js';
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
import { YttmTokenizer } from './tokenizer/yttm.js';
import { preprocessImage, type RgbImage } from './image/index.js';
import { Vqgan } from './vqgan/index.js';

export interface LoadProgress {
  stage: 'download' | 'convert' | 'load';
  /** file being downloaded / converted / loaded */
  file: string;
  loaded?: number;
  total?: number | null;
  bytesPerSecond?: number;
  etaSeconds?: number | null;
}

export interface FromPretrainedOptions {
  /** hub cache folder (default: HF_HUB_CACHE / HF_HOME/hub / ~/.cache/huggingface/hub) */
  cacheDir?: string;
  revision?: string;
  endpoint?: string;
  token?: string;
  offline?: boolean;
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
  /** onnxruntime intra-op threads (default: all cores) */
  threads?: number;
  precision?: LinearPrecision;
  executionProviders?: ExecutionProvider[];
  /** a bpe.model file, or any TextTokenizer (default: the folder's bpe.model, else the hub's) */
  tokenizer?: string | TextTokenizer;
  /** a VQGAN checkpoint file or folder; false = no image codec (text-only use) */
  vqgan?: string | false;
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

const isRepoId = (s: string) => /^[\w.-]+\/[\w.-]+$/.test(s);

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
    const { cfg, weightsFile, tokenizer, tokenizerFile, vqganFile, cacheDir } = await resolveModelFiles(source, opts);
    throwIfAborted(opts.signal);
    const session = { threads: opts.threads, executionProviders: opts.executionProviders, precision: opts.precision };
    const root = path.join(cacheDir, '.rudolph-ts', 'converted');
    const { model, dir } = await openConvertedModel(cfg, weightsFile, {
      ...session, root,
      onStage: (stage, detail) => opts.onProgress?.({ stage: stage === 'convert' ? 'convert' : 'load', file: detail }),
    });
    let vqgan: Vqgan | undefined;
    if (vqganFile) {
      opts.onProgress?.({ stage: 'load', file: vqganFile });
      vqgan = await Vqgan.fromCheckpoint(vqganFile, { threads: opts.threads, executionProviders: opts.executionProviders });
      if (vqgan.factor !== 8 || vqgan.cfg.nEmbed < cfg.imageVocab) {
        throw new ConfigError(`VQGAN ${vqganFile} (factor ${vqgan.factor}, ${vqgan.cfg.nEmbed} codes) does not match the model's ${cfg.imageVocab} image tokens at ×8`);
      }
    }
    const batchSize = opts.batchSize ?? 8;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize must be a positive integer, got ${batchSize}`);
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

/** Where a model's pieces are, once resolved (and downloaded when needed). */
export interface ModelFiles {
  cfg: RudolphConfig;
  /** the checkpoint (pytorch_model.bin or model.safetensors) */
  weightsFile: string;
  tokenizer: TextTokenizer;
  /** the bpe.model used, or 'custom' for a tokenizer object */
  tokenizerFile: string;
  vqganFile: string | null;
  cacheDir: string;
}

/**
 * Resolves a preset name, a model folder or a hub repo id into its config, checkpoint, tokenizer
 * and VQGAN files, downloading what is not cached (fromPretrained and fine-tuning share this).
 */
export async function resolveModelFiles(source: string, opts: Omit<FromPretrainedOptions, 'threads' | 'precision' | 'executionProviders' | 'batchSize'>): Promise<ModelFiles> {
  if (typeof source !== 'string' || source.trim() === '') throw new ConfigError('model: give a preset name, a model folder or a hub repo id');
  const hub = resolveHubSettings({ cacheDir: opts.cacheDir, endpoint: opts.endpoint, token: opts.token, offline: opts.offline });
  const download = async (repo: string, file: string): Promise<string> => {
    throwIfAborted(opts.signal);
    const dl: DownloadOptions = {
      cacheDir: hub.cacheDir, endpoint: opts.endpoint, token: opts.token, offline: opts.offline, revision: opts.revision, signal: opts.signal,
      onProgress: (p: DownloadProgress) => p.fromCache || opts.onProgress?.({ stage: 'download', file: `${p.repo}/${p.file}`, loaded: p.loaded, total: p.total, bytesPerSecond: p.bytesPerSecond, etaSeconds: p.etaSeconds }),
    };
    return downloadFile({ ...dl, repo, path: file });
  };
  const cached = (repo: string, file: string) => resolveCachedFile({ repo, path: file, revision: opts.revision, cacheDir: hub.cacheDir });

  let cfg: RudolphConfig;
  let weightsFile: string;
  let localDir: string | null = null;
  let repoForExtras: string | null = null;
  if (isPresetName(source)) {
    cfg = presetConfig(source);
    const files = PRESET_FILES[source];
    weightsFile = await download(files.model.repo, files.model.file);
  } else if (existsSync(source) && statSync(source).isDirectory()) {
    localDir = source;
    cfg = await readConfigFile(path.join(source, 'config.json'));
    weightsFile = findWeightsFile(source);
  } else if (isRepoId(source)) {
    repoForExtras = source;
    cfg = await readConfigFile(await download(source, 'config.json'));
    weightsFile = await downloadFirst(source, [...WEIGHT_FILES].reverse(), download, cached);
  } else {
    throw new ConfigError(`model "${source}" is not a preset (${PRESET_NAMES.join(', ')}), an existing folder with config.json, or a hub repo id (org/name)`);
  }

  const tokenizerSource = await resolveTokenizer(opts.tokenizer, localDir, repoForExtras, download, cached);
  const tokenizer = typeof tokenizerSource === 'string' ? (await YttmTokenizer.fromFile(tokenizerSource)).asTextTokenizer() : tokenizerSource;
  if (tokenizer.vocabSize > cfg.bpeVocab) {
    throw new ConfigError(`tokenizer has ${tokenizer.vocabSize} tokens but the model's text vocabulary holds ${cfg.bpeVocab}: they do not belong together`);
  }
  const vqganFile = opts.vqgan === false ? null : await resolveVqgan(opts.vqgan, localDir, download);
  return { cfg, weightsFile, tokenizer, tokenizerFile: typeof tokenizerSource === 'string' ? tokenizerSource : 'custom', vqganFile, cacheDir: hub.cacheDir };
}

type Fetch = (repo: string, file: string) => Promise<string>;
type CachedLookup = (repo: string, file: string) => Promise<string | null>;

/** The first of `files` the repo has: a cached one without network, else the first the hub serves. */
async function downloadFirst(repo: string, files: string[], download: Fetch, cached: CachedLookup): Promise<string> {
  for (const f of files) {
    const hit = await cached(repo, f);
    if (hit) return hit;
  }
  let last: unknown;
  for (const f of files) {
    try {
      return await download(repo, f);
    } catch (e) {
      if (!(e instanceof DownloadError && e.status === 404)) throw e;
      last = e;
    }
  }
  throw new RudolphError('CHECKPOINT', `${repo}: none of ${files.join(', ')} found on the hub`, { cause: last });
}

async function resolveTokenizer(given: string | TextTokenizer | undefined, dir: string | null, repo: string | null, download: Fetch, cached: CachedLookup): Promise<string | TextTokenizer> {
  if (given !== undefined) return given;
  if (dir && existsSync(path.join(dir, 'bpe.model'))) return path.join(dir, 'bpe.model');
  if (repo) {
    // a repo's own bpe.model is optional: absent (404) or unreachable offline → the default tokenizer
    const hit = await cached(repo, 'bpe.model');
    if (hit) return hit;
    try { return await download(repo, 'bpe.model'); } catch (e) { if (!(e instanceof DownloadError || (e instanceof RudolphError && e.code === 'OFFLINE'))) throw e; }
  }
  return download(TOKENIZER_FILE.repo, TOKENIZER_FILE.file);
}

const VQGAN_NAMES = ['vqgan.gumbelf8-sber.model.ckpt', 'vqgan.ckpt', 'vqgan.safetensors'];

async function resolveVqgan(given: string | undefined, dir: string | null, download: (repo: string, file: string) => Promise<string>): Promise<string> {
  const inFolder = async (folder: string): Promise<string | null> => {
    for (const name of VQGAN_NAMES) if (existsSync(path.join(folder, name))) return path.join(folder, name);
    const ckpts = (await fsp.readdir(folder)).filter((f) => f.endsWith('.ckpt'));
    return ckpts.length === 1 ? path.join(folder, ckpts[0]) : null;
  };
  if (given !== undefined) {
    if (!existsSync(given)) throw new ConfigError(`VQGAN ${given}: no such file or folder`);
    if (statSync(given).isDirectory()) {
      const found = await inFolder(given);
      if (!found) throw new ConfigError(`VQGAN folder ${given} holds none of ${VQGAN_NAMES.join(', ')}`);
      return found;
    }
    return given;
  }
  if (dir) {
    const found = await inFolder(dir);
    if (found) return found;
  }
  return download(VQGAN_FILE.repo, VQGAN_FILE.file);
}
