/**
 * VQGAN configuration: the taming-transformers `ddconfig` plus the quantizer sizes, the
 * Sber-VQGAN preset (SPEC §10), a reader for the official YAML config, and the per-level
 * layout (channels, where attention goes) that the weights and the graph are built from.
 */
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import { readText } from '../runtime/current.js';

export interface VqganConfig {
  /** base channel count */
  ch: number;
  /** channel multiplier per resolution level; levels − 1 halvings of the image side */
  chMult: number[];
  numResBlocks: number;
  /** feature-map sides (at the config `resolution`) that get attention blocks */
  attnResolutions: number[];
  /** the training image side: places the attention blocks, does not limit the input size */
  resolution: number;
  zChannels: number;
  embedDim: number;
  /** codebook size */
  nEmbed: number;
  inChannels: number;
  outCh: number;
  doubleZ: boolean;
}

/** ruDALL-E's `vqgan.gumbelf8-sber.config.yml`. */
export const SBER_VQGAN_CONFIG: Readonly<VqganConfig> = Object.freeze({
  ch: 128,
  chMult: [1, 1, 2, 4],
  numResBlocks: 2,
  attnResolutions: [32],
  resolution: 256,
  zChannels: 256,
  embedDim: 256,
  nEmbed: 8192,
  inChannels: 3,
  outCh: 3,
  doubleZ: false,
});

/** How many pixels of image side one code covers (8 for Sber-VQGAN). */
export function downsamplingFactor(cfg: VqganConfig): number {
  return 2 ** (cfg.chMult.length - 1);
}

/** One resolution level: its res blocks go inChannels → outChannels; `attn` adds an AttnBlock after each. */
export interface LevelLayout {
  index: number;
  inChannels: number;
  outChannels: number;
  blocks: number;
  attn: boolean;
  /** encoder: Downsample after the level; decoder: Upsample after it */
  resample: boolean;
}

/** taming Encoder levels in forward order; attention where the running `curr_res` is listed. */
export function encoderLevels(cfg: VqganConfig): LevelLayout[] {
  const levels = cfg.chMult.length;
  const inMult = [1, ...cfg.chMult];
  let currRes = cfg.resolution;
  return cfg.chMult.map((mult, i) => {
    const level: LevelLayout = {
      index: i,
      inChannels: cfg.ch * inMult[i],
      outChannels: cfg.ch * mult,
      blocks: cfg.numResBlocks,
      attn: cfg.attnResolutions.includes(currRes),
      resample: i !== levels - 1,
    };
    if (level.resample) currRes = Math.floor(currRes / 2);
    return level;
  });
}

/** taming Decoder levels in forward order (deepest first), num_res_blocks + 1 blocks each. */
export function decoderLevels(cfg: VqganConfig): LevelLayout[] {
  const levels = cfg.chMult.length;
  let blockIn = cfg.ch * cfg.chMult[levels - 1];
  let currRes = Math.floor(cfg.resolution / 2 ** (levels - 1));
  const out: LevelLayout[] = [];
  for (let i = levels - 1; i >= 0; i--) {
    const blockOut = cfg.ch * cfg.chMult[i];
    out.push({
      index: i,
      inChannels: blockIn,
      outChannels: blockOut,
      blocks: cfg.numResBlocks + 1,
      attn: cfg.attnResolutions.includes(currRes),
      resample: i !== 0,
    });
    blockIn = blockOut;
    if (i !== 0) currRes *= 2;
  }
  return out;
}

/** Channels at the bottom of the U (mid blocks of encoder and decoder). */
export function bottleneckChannels(cfg: VqganConfig): number {
  return cfg.ch * cfg.chMult[cfg.chMult.length - 1];
}

/**
 * Sane bounds per field, checked before anything is sized from them (Sber-VQGAN: ch 128,
 * ch_mult [1, 1, 2, 4], 2 res blocks, resolution 256, z 256, 8192 codes): room for larger
 * models, none for configs that would ask for gigabytes.
 */
export const VQGAN_BOUNDS = {
  ch: 1024,
  chMultLength: 8,
  chMult: 16,
  numResBlocks: 16,
  attnResolutions: 32,
  resolution: 8192,
  zChannels: 4096,
  nEmbed: 2 ** 20,
  channels: 16,
  /** widest feature map: ch × max(ch_mult) */
  width: 4096,
  parameters: 2e9,
} as const;

function positiveInt(v: unknown, key: string, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > max) {
    throw new ConfigError(`${key} must be a positive integer ≤ ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function intList(v: unknown, key: string, allowEmpty: boolean, maxLength: number, max: number): number[] {
  if (!Array.isArray(v) || (!allowEmpty && v.length === 0) || v.length > maxLength) {
    throw new ConfigError(`${key} must be a${allowEmpty ? '' : ' non-empty'} list of at most ${maxLength} positive integers, got ${JSON.stringify(v)?.slice(0, 80)}`);
  }
  return v.map((x, i) => positiveInt(x, `${key}[${i}]`, max));
}

/** Parameters of the encoder, decoder and quantizer convs (weights only): what loading it would cost. */
export function approxParameterCount(cfg: VqganConfig): number {
  let n = 0;
  const resnet = (inp: number, out: number): number => 9 * inp * out + 9 * out * out + (inp !== out ? inp * out : 0);
  for (const lv of [...encoderLevels(cfg), ...decoderLevels(cfg)]) {
    n += resnet(lv.inChannels, lv.outChannels) + (lv.blocks - 1) * resnet(lv.outChannels, lv.outChannels);
    if (lv.attn) n += lv.blocks * 4 * lv.outChannels ** 2;
    if (lv.resample) n += 9 * lv.outChannels ** 2;
  }
  const bottom = bottleneckChannels(cfg);
  n += 2 * (2 * resnet(bottom, bottom) + 4 * bottom ** 2);
  n += 9 * cfg.ch * (cfg.inChannels + cfg.outCh) + 18 * bottom * cfg.zChannels;
  n += cfg.nEmbed * (cfg.zChannels + cfg.embedDim) + 2 * cfg.zChannels * cfg.embedDim;
  return n;
}

/** Checks every field against its bounds and the model's constraints; returns a normalised copy. */
export function validateVqganConfig(cfg: VqganConfig, source = 'vqgan config'): VqganConfig {
  const B = VQGAN_BOUNDS;
  try {
    if (typeof cfg !== 'object' || cfg === null) throw new ConfigError('expected a config object');
    const out: VqganConfig = {
      ch: positiveInt(cfg.ch, 'ch', B.ch),
      chMult: intList(cfg.chMult, 'ch_mult', false, B.chMultLength, B.chMult),
      numResBlocks: positiveInt(cfg.numResBlocks, 'num_res_blocks', B.numResBlocks),
      attnResolutions: intList(cfg.attnResolutions, 'attn_resolutions', true, B.attnResolutions, B.resolution),
      resolution: positiveInt(cfg.resolution, 'resolution', B.resolution),
      zChannels: positiveInt(cfg.zChannels, 'z_channels', B.zChannels),
      embedDim: positiveInt(cfg.embedDim, 'embed_dim', B.zChannels),
      nEmbed: positiveInt(cfg.nEmbed, 'n_embed', B.nEmbed),
      inChannels: positiveInt(cfg.inChannels, 'in_channels', B.channels),
      outCh: positiveInt(cfg.outCh, 'out_ch', B.channels),
      doubleZ: cfg.doubleZ,
    };
    if (typeof out.doubleZ !== 'boolean') throw new ConfigError(`double_z must be true or false, got ${JSON.stringify(out.doubleZ)}`);
    // GumbelVQ feeds quant_conv's embed_dim channels to quantize.proj, built for z_channels,
    // and quant_conv itself expects the encoder's z_channels: anything else cannot run.
    if (out.doubleZ) throw new ConfigError('double_z must be false for a GumbelVQ model (quant_conv takes z_channels)');
    if (out.embedDim !== out.zChannels) {
      throw new ConfigError(`embed_dim (${out.embedDim}) must equal z_channels (${out.zChannels}) for a GumbelVQ model`);
    }
    // Every normalised feature map has ch·mult channels, split into 32 groups.
    if (out.ch % 32 !== 0) throw new ConfigError(`ch (${out.ch}) must be a multiple of 32: GroupNorm uses 32 groups`);
    const width = out.ch * Math.max(...out.chMult);
    if (width > B.width) throw new ConfigError(`ch × max(ch_mult) is ${width} channels, over the ${B.width} a feature map may have`);
    const params = approxParameterCount(out);
    if (params > B.parameters) {
      throw new ConfigError(`describes about ${params.toExponential(2)} parameters (ch ${out.ch}, ch_mult ${JSON.stringify(out.chMult)}, num_res_blocks ${out.numResBlocks}), over the ${B.parameters.toExponential(0)} this library loads`);
    }
    return out;
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${source}: ${e.message}`);
    throw e;
  }
}

/**
 * The official taming config (`model.params.ddconfig`, `model.params.embed_dim`,
 * `model.params.n_embed`) as parsed YAML/JSON.
 */
export function vqganConfigFromObject(obj: unknown, source = 'vqgan config'): VqganConfig {
  const at = (o: unknown, key: string, where: string): Record<string, unknown> => {
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new ConfigError(`${source}: ${where} is not a mapping`);
    const v = (o as Record<string, unknown>)[key];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${source}: missing mapping ${where}.${key}`);
    return v as Record<string, unknown>;
  };
  const params = at(at(obj, 'model', 'the document'), 'params', 'model');
  const dd = at(params, 'ddconfig', 'model.params');
  return validateVqganConfig({
    ch: dd.ch as number,
    chMult: dd.ch_mult as number[],
    numResBlocks: dd.num_res_blocks as number,
    attnResolutions: dd.attn_resolutions as number[],
    resolution: dd.resolution as number,
    zChannels: dd.z_channels as number,
    embedDim: params.embed_dim as number,
    nEmbed: params.n_embed as number,
    inChannels: (dd.in_channels ?? 3) as number,
    outCh: (dd.out_ch ?? 3) as number,
    doubleZ: (dd.double_z ?? false) as boolean,
  }, source);
}

/**
 * The official taming YAML is about a kilobyte. The YAML parser's cost grows steeply with
 * nesting (1 MB of `[[[…` took 5.5 s and 550 MB before failing), so the text is bounded first.
 */
export const MAX_YAML_BYTES = 64 * 1024;

export function vqganConfigFromYaml(text: string, source = 'vqgan config'): VqganConfig {
  if (text.length > MAX_YAML_BYTES) {
    throw new ConfigError(`${source}: ${text.length} characters, over the ${MAX_YAML_BYTES} a VQGAN config may have (the official one is about 1 KB)`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { logLevel: 'error' }); // warnings (e.g. an ambiguous alias) would go to process warnings
  } catch (e) {
    throw new ConfigError(`${source}: not valid YAML: ${(e as Error).message}`);
  }
  return vqganConfigFromObject(doc, source);
}


export async function readVqganConfigFile(file: string): Promise<VqganConfig> {
  let text: string;
  try {
    text = await readText(file, MAX_YAML_BYTES);
  } catch (e) {
    throw new ConfigError(`${file}: cannot read the VQGAN config: ${(e as Error).message}`);
  }
  return vqganConfigFromYaml(text, file);
}
