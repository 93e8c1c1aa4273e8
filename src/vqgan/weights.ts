/**
 * The GumbelVQ parameter set: official state_dict names and shapes for a config, and
 * validation of a loaded state dict. `loss.*` (discriminator / LPIPS) tensors and anything
 * else outside the model's own modules are ignored, as the official `load_state_dict(...,
 * strict=False)` does; an unknown key inside a model module means another config.
 */
import { WeightsError } from '../errors.js';
import { numel, type ParamSpec, shapeToString, type StateDict, toFloat32 } from '../tensor.js';
import { Rng } from '../util/random.js';
import { bottleneckChannels, decoderLevels, encoderLevels, type VqganConfig } from './config.js';

export interface VqganParam { shape: number[]; data: Float32Array }
/** Name → float32 parameter, official names. */
export type VqganWeights = Map<string, VqganParam>;

const MODEL_PREFIXES = ['encoder.', 'decoder.', 'quantize.', 'quant_conv.', 'post_quant_conv.'];

function conv(specs: ParamSpec[], prefix: string, out: number, inp: number, k: number): void {
  specs.push({ name: `${prefix}.weight`, shape: [out, inp, k, k] }, { name: `${prefix}.bias`, shape: [out] });
}

function norm(specs: ParamSpec[], prefix: string, c: number): void {
  specs.push({ name: `${prefix}.weight`, shape: [c] }, { name: `${prefix}.bias`, shape: [c] });
}

function resnetBlock(specs: ParamSpec[], prefix: string, inp: number, out: number): void {
  norm(specs, `${prefix}.norm1`, inp);
  conv(specs, `${prefix}.conv1`, out, inp, 3);
  norm(specs, `${prefix}.norm2`, out);
  conv(specs, `${prefix}.conv2`, out, out, 3);
  if (inp !== out) conv(specs, `${prefix}.nin_shortcut`, out, inp, 1);
}

function attnBlock(specs: ParamSpec[], prefix: string, c: number): void {
  norm(specs, `${prefix}.norm`, c);
  for (const p of ['q', 'k', 'v', 'proj_out']) conv(specs, `${prefix}.${p}`, c, c, 1);
}

function mid(specs: ParamSpec[], prefix: string, c: number): void {
  resnetBlock(specs, `${prefix}.mid.block_1`, c, c);
  attnBlock(specs, `${prefix}.mid.attn_1`, c);
  resnetBlock(specs, `${prefix}.mid.block_2`, c, c);
}

/** Every parameter of GumbelVQ for a config (the state_dict order of encoder and decoder differs; order is irrelevant here). */
export function vqganParameterSpecs(cfg: VqganConfig): ParamSpec[] {
  const specs: ParamSpec[] = [];
  const bottom = bottleneckChannels(cfg);
  conv(specs, 'encoder.conv_in', cfg.ch, cfg.inChannels, 3);
  for (const lv of encoderLevels(cfg)) {
    let c = lv.inChannels;
    for (let b = 0; b < lv.blocks; b++) {
      resnetBlock(specs, `encoder.down.${lv.index}.block.${b}`, c, lv.outChannels);
      c = lv.outChannels;
      if (lv.attn) attnBlock(specs, `encoder.down.${lv.index}.attn.${b}`, c);
    }
    if (lv.resample) conv(specs, `encoder.down.${lv.index}.downsample.conv`, c, c, 3);
  }
  mid(specs, 'encoder', bottom);
  norm(specs, 'encoder.norm_out', bottom);
  conv(specs, 'encoder.conv_out', cfg.doubleZ ? 2 * cfg.zChannels : cfg.zChannels, bottom, 3);

  conv(specs, 'decoder.conv_in', bottom, cfg.zChannels, 3);
  mid(specs, 'decoder', bottom);
  let c = bottom;
  for (const lv of decoderLevels(cfg)) {
    for (let b = 0; b < lv.blocks; b++) {
      resnetBlock(specs, `decoder.up.${lv.index}.block.${b}`, c, lv.outChannels);
      c = lv.outChannels;
      if (lv.attn) attnBlock(specs, `decoder.up.${lv.index}.attn.${b}`, c);
    }
    if (lv.resample) conv(specs, `decoder.up.${lv.index}.upsample.conv`, c, c, 3);
  }
  norm(specs, 'decoder.norm_out', c);
  conv(specs, 'decoder.conv_out', cfg.outCh, c, 3);

  conv(specs, 'quant_conv', cfg.embedDim, cfg.zChannels, 1);
  conv(specs, 'quantize.proj', cfg.nEmbed, cfg.zChannels, 1);
  specs.push({ name: 'quantize.embed.weight', shape: [cfg.nEmbed, cfg.embedDim] });
  conv(specs, 'post_quant_conv', cfg.zChannels, cfg.embedDim, 1);
  return specs;
}

/**
 * Checks tensor names, shapes and dtypes against the config without reading any data (loss.*
 * and other non-model tensors are ignored; an unknown model tensor means another config).
 */
export function checkVqganTensorInfos(cfg: VqganConfig, infos: ReadonlyMap<string, { dtype: string; shape: readonly number[] }>, source = 'checkpoint'): void {
  const specs = vqganParameterSpecs(cfg);
  const missing: string[] = [];
  for (const spec of specs) {
    const t = infos.get(spec.name);
    if (!t) { missing.push(spec.name); continue; }
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      throw new WeightsError(`${source}: tensor ${spec.name} has shape ${shapeToString(t.shape)}, expected ${shapeToString(spec.shape)} for this VQGAN config`);
    }
    if (!['float32', 'float16', 'bfloat16', 'float64'].includes(t.dtype)) {
      throw new WeightsError(`${source}: tensor ${spec.name} has dtype ${t.dtype}, expected a floating type`);
    }
  }
  if (missing.length > 0) {
    throw new WeightsError(`${source}: ${missing.length} VQGAN tensor(s) missing for this config: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
  }
  const known = new Set(specs.map((s) => s.name));
  const extra = [...infos.keys()].filter((k) => !known.has(k) && MODEL_PREFIXES.some((p) => k.startsWith(p)));
  if (extra.length > 0) {
    throw new WeightsError(`${source}: unexpected tensor(s) ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''} — not a VQGAN of this config`);
  }
}

/** Checks a state dict against the config and converts every needed tensor to float32. */
export function vqganWeightsFromStateDict(cfg: VqganConfig, sd: StateDict, source = 'checkpoint'): VqganWeights {
  checkVqganTensorInfos(cfg, sd, source);
  const out: VqganWeights = new Map();
  for (const spec of vqganParameterSpecs(cfg)) {
    const data = toFloat32(sd.get(spec.name)!);
    if (data.length !== numel(spec.shape)) throw new WeightsError(`${source}: tensor ${spec.name} holds ${data.length} values, expected ${numel(spec.shape)}`);
    out.set(spec.name, { shape: spec.shape, data });
  }
  return out;
}

/**
 * Seeded random weights (benchmarks, tests): convs ~ U(±1/√fan_in) as torch's default init,
 * norms 1/0, codebook ~ U(±1/n_embed) as GumbelQuantize's init.
 */
export function randomVqganStateDict(cfg: VqganConfig, seed = 1): StateDict {
  const rng = new Rng(seed);
  const out: StateDict = new Map();
  let fanIn = 1; // of the conv weight just made: its bias comes next in the spec list
  for (const spec of vqganParameterSpecs(cfg)) {
    const data = new Float32Array(numel(spec.shape));
    const isNorm = /norm[^.]*\.(weight|bias)$/.test(spec.name);
    if (isNorm) {
      if (spec.name.endsWith('.weight')) data.fill(1);
    } else {
      if (spec.shape.length === 4) fanIn = numel(spec.shape.slice(1));
      const bound = spec.name === 'quantize.embed.weight' ? 1 / cfg.nEmbed : 1 / Math.sqrt(fanIn);
      rng.fillUniform(data, -bound, bound);
    }
    out.set(spec.name, { dtype: 'float32', shape: spec.shape, data });
  }
  return out;
}
