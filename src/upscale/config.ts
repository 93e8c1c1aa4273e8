/**
 * RRDBNet configuration (Real-ESRGAN's generator, as ruDALL-E's `rudalle/realesrgan` builds it)
 * and the `predict` tiling parameters with their official defaults.
 */
import { ConfigError, InputError } from '../errors.js';

/** The output scales the hub ships weights for (`RealESRGAN_x2.pth`, `_x4`, `_x8`). */
export const UPSCALE_SCALES = [2, 4, 8] as const;
export type UpscaleScale = (typeof UPSCALE_SCALES)[number];

/** The `RRDBNet(num_in_ch, num_out_ch, scale, num_feat, num_block, num_grow_ch)` arguments. */
export interface RrdbNetConfig {
  scale: UpscaleScale;
  /** feature channels of the trunk */
  numFeat: number;
  /** RRDB blocks in the body */
  numBlock: number;
  /** channels each dense-block conv adds */
  numGrowCh: number;
  numInCh: number;
  numOutCh: number;
}

/** What `RealESRGAN(device, scale)` hard-codes: 64 features, 23 blocks, growth 32, RGB in and out. */
export function realEsrganConfig(scale: UpscaleScale): RrdbNetConfig {
  return { scale: checkScale(scale, 'Real-ESRGAN'), numFeat: 64, numBlock: 23, numGrowCh: 32, numInCh: 3, numOutCh: 3 };
}

export function isUpscaleScale(x: unknown): x is UpscaleScale {
  return (UPSCALE_SCALES as readonly unknown[]).includes(x);
}

/** The scale a caller asked for, checked (InputError). */
export function checkScale(x: unknown, what = 'upscale'): UpscaleScale {
  if (!isUpscaleScale(x)) throw new InputError(`${what}: scale must be one of ${UPSCALE_SCALES.join(', ')}, got ${JSON.stringify(x)}`);
  return x;
}

/**
 * ×2 runs the ×4 network on a pixel-unshuffled input (3 → 12 channels at half size), so the
 * network's input side must be a multiple of this factor.
 */
export function unshuffleFactor(cfg: Pick<RrdbNetConfig, 'scale'>): number {
  return cfg.scale === 2 ? 2 : 1;
}

/** How many nearest-×2 + conv stages the upsampler has (conv_up1, conv_up2[, conv_up3]). */
export function upsampleStages(cfg: Pick<RrdbNetConfig, 'scale'>): number {
  return cfg.scale === 8 ? 3 : 2;
}

function positiveInt(v: unknown, key: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > 4096) {
    throw new ConfigError(`RRDBNet config: ${key} must be an integer in [1, 4096], got ${JSON.stringify(v)}`);
  }
  return v;
}

export function validateRrdbNetConfig(cfg: RrdbNetConfig): RrdbNetConfig {
  if (typeof cfg !== 'object' || cfg === null) throw new ConfigError('RRDBNet config: not an object');
  if (!isUpscaleScale(cfg.scale)) throw new ConfigError(`RRDBNet config: scale must be one of ${UPSCALE_SCALES.join(', ')}, got ${JSON.stringify(cfg.scale)}`);
  return {
    scale: cfg.scale,
    numFeat: positiveInt(cfg.numFeat, 'numFeat'),
    numBlock: positiveInt(cfg.numBlock, 'numBlock'),
    numGrowCh: positiveInt(cfg.numGrowCh, 'numGrowCh'),
    numInCh: positiveInt(cfg.numInCh, 'numInCh'),
    numOutCh: positiveInt(cfg.numOutCh, 'numOutCh'),
  };
}

/** The official `rrdbnet_args` (snake case, as in the golden config.json) as a config. */
export function rrdbNetConfigFromArgs(args: Record<string, unknown>): RrdbNetConfig {
  return validateRrdbNetConfig({
    scale: args.scale as UpscaleScale,
    numFeat: (args.num_feat ?? 64) as number,
    numBlock: (args.num_block ?? 23) as number,
    numGrowCh: (args.num_grow_ch ?? 32) as number,
    numInCh: (args.num_in_ch ?? 3) as number,
    numOutCh: (args.num_out_ch ?? 3) as number,
  });
}

/** `RealESRGAN.predict(lr_image, batch_size, patches_size, padding, pad_size)`. */
export interface TilingOptions {
  /** side of the image square each patch contributes (default 192) */
  patchSize?: number;
  /** overlap added around each patch, cropped off after the network (default 24) */
  padding?: number;
  /** mirror border added around the image first and cropped off at the end (default 15) */
  padSize?: number;
  /** patches per network call; no effect on the result beyond float rounding (default 4) */
  batchSize?: number;
  /**
   * Reproduce the official stitching when 2·padding ≥ patchSize: it then counts one patch per row
   * too many, so tiles land in the wrong places and parts of the image stay black. Default false:
   * every tile goes where it was cut from (identical to the official result whenever 2·padding < patchSize,
   * which includes the defaults).
   */
  officialStitch?: boolean;
}

export type Tiling = Required<TilingOptions>;

export const DEFAULT_TILING: Readonly<Tiling> = Object.freeze({ patchSize: 192, padding: 24, padSize: 15, batchSize: 4, officialStitch: false });

/** Largest network input side (patch + 2·padding): bounds one call's activations. */
export const MAX_PATCH_SIDE = 1024;

/** The options filled with the defaults and checked against the network's constraints. */
export function resolveTiling(opts: TilingOptions, cfg: Pick<RrdbNetConfig, 'scale'>, what = 'upscale'): Tiling {
  const t: Tiling = { ...DEFAULT_TILING, ...definedOnly(opts) };
  const int = (v: unknown, key: string, min: number) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new InputError(`${what}: ${key} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  };
  int(t.patchSize, 'patchSize', 1);
  // padding 0 or padSize 0 crop `[0:-0]`, i.e. everything, in the official code
  int(t.padding, 'padding', 1);
  int(t.padSize, 'padSize', 1);
  int(t.batchSize, 'batchSize', 1);
  if (t.batchSize > 64) throw new InputError(`${what}: batchSize must be at most 64, got ${t.batchSize}`);
  if (typeof t.officialStitch !== 'boolean') throw new InputError(`${what}: officialStitch must be true or false`);
  const side = t.patchSize + 2 * t.padding;
  if (side > MAX_PATCH_SIDE) throw new InputError(`${what}: patchSize + 2·padding = ${side} exceeds ${MAX_PATCH_SIDE}`);
  const f = unshuffleFactor(cfg);
  if (side % f !== 0) {
    throw new InputError(`${what}: ×${cfg.scale} needs patchSize + 2·padding (${side}) to be a multiple of ${f} (pixel-unshuffle)`);
  }
  return t;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
