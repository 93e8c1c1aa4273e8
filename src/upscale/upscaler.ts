/**
 * Real-ESRGAN super-resolution as ruDALL-E ships it: `Upscaler` is one network (one scale) with
 * the official `predict` pipeline; `SuperResolution` opens the ×2 / ×4 / ×8 networks on first use
 * (weights found by a locator, e.g. the hub's) and keeps each session for later calls.
 */
import { ConfigError, InputError, WeightsError } from '../errors.js';
import type { RgbImage } from '../image/index.js';
import { loadStateDict } from '../io/checkpoint.js';
import type { SessionOptions } from '../onnx/session.js';
import type { Progress, RunControl } from '../util/progress.js';
import type { StateDict } from '../tensor.js';
import { checkScale, realEsrganConfig, resolveTiling, type RrdbNetConfig, type TilingOptions, type UpscaleScale } from './config.js';
import { predict, type PredictResult } from './predict.js';
import { REALESRGAN_STATE_DICT_KEYS, RrdbNet } from './rrdbnet.js';
import { inferRrdbNetConfig } from './weights.js';

export interface UpscalerOptions extends SessionOptions {
  /**
   * the network's size (default: the official full size for the scale: 64 features, 23 blocks,
   * growth 32); 'fromWeights' reads it off the checkpoint's tensor shapes (any RRDBNet file)
   */
  config?: Omit<RrdbNetConfig, 'scale'> | 'fromWeights';
  /** default tiling of every call (official defaults: patches 192, padding 24, border 15, batches of 4) */
  tiling?: TilingOptions;
  /** largest width × height of a result (default 4096²) */
  maxOutputPixels?: number;
}

/** One image to upscale, with per-call tiling, cancellation and progress. */
export interface UpscaleRequest extends RunControl, TilingOptions {
  image: RgbImage;
}

export class Upscaler {
  private constructor(private readonly net: RrdbNet, private readonly opts: UpscalerOptions) {}

  /** Opens a Real-ESRGAN `.pth` (`{'params': …}`, `{'params_ema': …}` or a plain state dict) or `.safetensors`. */
  static async fromCheckpoint(file: string, opts: UpscalerOptions & { scale: UpscaleScale }): Promise<Upscaler> {
    if (opts?.config === 'fromWeights') {
      const sd = await loadStateDict(file, { toFloat32: true, stateDictKeys: REALESRGAN_STATE_DICT_KEYS });
      return new Upscaler(await RrdbNet.fromStateDict(upscalerConfig(opts, sd, file), sd, opts), opts);
    }
    const cfg = upscalerConfig(opts);
    return new Upscaler(await RrdbNet.fromCheckpoint(file, cfg, opts), opts);
  }

  /** From a state dict with the official names. */
  static async fromStateDict(sd: StateDict, opts: UpscalerOptions & { scale: UpscaleScale }): Promise<Upscaler> {
    const cfg = upscalerConfig(opts, sd);
    return new Upscaler(await RrdbNet.fromStateDict(cfg, sd, opts), opts);
  }

  get scale(): UpscaleScale { return this.net.cfg.scale; }
  get config(): Readonly<RrdbNetConfig> { return this.net.cfg; }

  /** The image `scale` times larger, as the official `RealESRGAN.predict` computes it. */
  async upscale(input: RgbImage | UpscaleRequest): Promise<RgbImage> {
    return (await this.predict(input)).image;
  }

  /** `upscale` with the pipeline's inner values (mirror-padded input, floats on request, batch sizes). */
  async predict(input: RgbImage | UpscaleRequest, extra: { keepFloat?: boolean } = {}): Promise<PredictResult> {
    const req: UpscaleRequest = isRequest(input) ? input : { image: input };
    const tiling = resolveTiling({ ...this.opts.tiling, ...pickTiling(req) }, this.net.cfg);
    return predict(this.net, req.image, tiling, {
      signal: req.signal, onProgress: req.onProgress, maxOutputPixels: this.opts.maxOutputPixels, keepFloat: extra.keepFloat,
    });
  }

  async release(): Promise<void> {
    await this.net.release();
  }
}

function upscalerConfig(opts: UpscalerOptions & { scale: UpscaleScale }, sd?: StateDict, source?: string): RrdbNetConfig {
  const scale = checkScale(opts?.scale, 'Upscaler');
  const size = opts.config === 'fromWeights'
    ? inferRrdbNetConfig(sd ?? new Map(), scale, source)
    : opts.config;
  const cfg = { ...realEsrganConfig(scale), ...size, scale };
  if (cfg.numInCh !== 3 || cfg.numOutCh !== 3) {
    const problem = `the network must take and give RGB (3 channels), got ${cfg.numInCh} → ${cfg.numOutCh}`;
    if (opts.config === 'fromWeights') throw new WeightsError(`${source ?? 'state dict'}: as ×${scale} ${problem} (weights of another scale?)`);
    throw new ConfigError(`Upscaler: ${problem}`);
  }
  return cfg;
}

function isRequest(x: RgbImage | UpscaleRequest): x is UpscaleRequest {
  return typeof x === 'object' && x !== null && 'image' in x;
}

function pickTiling(r: TilingOptions): TilingOptions {
  return { patchSize: r.patchSize, padding: r.padding, padSize: r.padSize, batchSize: r.batchSize, officialStitch: r.officialStitch };
}

/** Finds (or downloads) the weight file of a scale; `signal` cancels a download, `onProgress` follows it. */
export type UpscalerWeights = (scale: UpscaleScale, ctl: { signal?: AbortSignal; onProgress?: (p: Progress) => void }) => Promise<string>;

export interface SuperResolutionOptions extends UpscalerOptions {
  /** weight files per scale, or a function that finds them (e.g. `hubUpscalerWeights()`: the hub, on first use) */
  weights: Partial<Record<UpscaleScale, string>> | UpscalerWeights;
}

/** `{ image, scale }` → the upscaled image; the network of each scale is opened once, on first use. */
export class SuperResolution {
  private readonly open = new Map<UpscaleScale, Promise<Upscaler>>();
  private released = false;

  constructor(private readonly opts: SuperResolutionOptions) {
    if (typeof opts?.weights !== 'function' && (typeof opts?.weights !== 'object' || opts.weights === null)) {
      throw new ConfigError('SuperResolution: weights must be a map of scale → file or a function');
    }
  }

  async upscale(req: UpscaleRequest & { scale: UpscaleScale }): Promise<RgbImage> {
    const scale = checkScale(req?.scale);
    return (await this.upscaler(scale, req.signal, req.onProgress)).upscale(req);
  }

  /** The Upscaler of a scale, opened on first use (a download reports to `onProgress` as stage 'download'). */
  upscaler(scale: UpscaleScale, signal?: AbortSignal, onProgress?: (p: Progress) => void): Promise<Upscaler> {
    if (this.released) return Promise.reject(new InputError('SuperResolution: already released'));
    checkScale(scale);
    let hit = this.open.get(scale);
    if (!hit) {
      hit = (async () => {
        const file = await this.locate(scale, signal, onProgress);
        const { weights: _, ...opts } = this.opts;
        return Upscaler.fromCheckpoint(file, { ...opts, scale });
      })();
      this.open.set(scale, hit);
      // a failed or cancelled load is not cached: the next call tries again
      hit.catch(() => { if (this.open.get(scale) === hit) this.open.delete(scale); });
    }
    return hit;
  }

  async release(): Promise<void> {
    this.released = true;
    const pending = [...this.open.values()];
    this.open.clear();
    await Promise.all(pending.map(async (p) => (await p.catch(() => null))?.release()));
  }

  private async locate(scale: UpscaleScale, signal: AbortSignal | undefined, onProgress: ((p: Progress) => void) | undefined): Promise<string> {
    const w = this.opts.weights;
    if (typeof w === 'function') return w(scale, { signal, onProgress });
    const file = w[scale];
    if (!file) throw new ConfigError(`SuperResolution: no weights for ×${scale} (have ${Object.keys(w).map((k) => `×${k}`).join(', ') || 'none'})`);
    return file;
  }
}
