/**
 * Random-weight checkpoints laid out like the real hub files (issue 15 §4), for the benchmarks
 * that load checkpoints:
 * - RUDOLPH `pytorch_model.bin`: every parameter as a Half storage (the hub files are fp16:
 *   350M-v2 710 MB, 1.3B 2.65 GB, 2.7B-FBC2 5.32 GB) plus the four Bool attention-mask buffers
 *   (the official key set of KEYS-350M.txt, masks right after the logits head as there);
 * - Sber VQGAN `vqgan.gumbelf8-sber.model.ckpt`: the GumbelVQ parameters in fp32 plus the
 *   `loss.*` modules the real file carries (LPIPS VGG16 + NLayerDiscriminator with BatchNorm
 *   running stats and int64 `num_batches_tracked` counters): 346 MB like the real file.
 * Tensors are generated one at a time while the file is written, so a 5 GB checkpoint never
 * sits in memory.
 */
import type { TensorInfo, TensorSource } from '../src/io/checkpoint.js';
import { saveTorchCheckpoint } from '../src/io/torch-writer.js';
import type { RudolphConfig } from '../src/model/config.js';
import { fullMask, MASK_KINDS } from '../src/model/masks.js';
import { MASK_BUFFER_NAMES, parameterSpecs } from '../src/model/weights.js';
import { type HostTensor, numel } from '../src/tensor.js';
import { SBER_VQGAN_CONFIG } from '../src/vqgan/config.js';
import { vqganParameterSpecs } from '../src/vqgan/weights.js';

export type FloatDType = 'float16' | 'float32';

/** The official state_dict layout: embeddings and logits head, the 4 mask buffers, the layers, the final LayerNorm. */
export function rudolphCheckpointInfos(cfg: RudolphConfig, dtype: FloatDType = 'float16'): Map<string, TensorInfo> {
  const specs = parameterSpecs(cfg);
  const head = specs.filter((s) => !s.name.startsWith('transformer.'));
  const rest = specs.filter((s) => s.name.startsWith('transformer.'));
  const infos = new Map<string, TensorInfo>();
  for (const s of head) infos.set(s.name, { dtype, shape: s.shape });
  for (const name of MASK_BUFFER_NAMES) infos.set(name, { dtype: 'bool', shape: [cfg.totalLength, cfg.totalLength] });
  for (const s of rest) infos.set(s.name, { dtype, shape: s.shape });
  return infos;
}

/** The Sber VQGAN state_dict (fp32) with the taming loss modules the real Lightning checkpoint holds. */
export function vqganCheckpointInfos(): Map<string, TensorInfo> {
  const infos = new Map<string, TensorInfo>();
  for (const s of vqganParameterSpecs({ ...SBER_VQGAN_CONFIG, chMult: [...SBER_VQGAN_CONFIG.chMult], attnResolutions: [...SBER_VQGAN_CONFIG.attnResolutions] })) {
    infos.set(s.name, { dtype: 'float32', shape: s.shape });
  }
  const f32 = (name: string, shape: number[]) => infos.set(name, { dtype: 'float32', shape });
  const conv = (prefix: string, out: number, inp: number, k: number, bias = true) => {
    f32(`${prefix}.weight`, [out, inp, k, k]);
    if (bias) f32(`${prefix}.bias`, [out]);
  };
  // LPIPS: scaling layer buffers, VGG16 features split into 5 slices (torchvision indices), 1×1 "lin" heads
  const lp = 'loss.perceptual_loss';
  f32(`${lp}.scaling_layer.shift`, [1, 3, 1, 1]);
  f32(`${lp}.scaling_layer.scale`, [1, 3, 1, 1]);
  const vgg: [number, number, number, number][] = [
    [1, 0, 64, 3], [1, 2, 64, 64], [2, 5, 128, 64], [2, 7, 128, 128], [3, 10, 256, 128], [3, 12, 256, 256], [3, 14, 256, 256],
    [4, 17, 512, 256], [4, 19, 512, 512], [4, 21, 512, 512], [5, 24, 512, 512], [5, 26, 512, 512], [5, 28, 512, 512],
  ];
  for (const [slice, idx, out, inp] of vgg) conv(`${lp}.net.slice${slice}.${idx}`, out, inp, 3);
  [64, 128, 256, 512, 512].forEach((c, i) => f32(`${lp}.lin${i}.model.1.weight`, [1, c, 1, 1]));
  // NLayerDiscriminator(3, ndf 64, 3 layers): 4×4 convs, BatchNorm after the bias-free ones
  const d = 'loss.discriminator.main';
  conv(`${d}.0`, 64, 3, 4);
  for (const [convIdx, out, inp] of [[2, 128, 64], [5, 256, 128], [8, 512, 256]] as const) {
    conv(`${d}.${convIdx}`, out, inp, 4, false);
    const bn = `${d}.${convIdx + 1}`;
    for (const p of ['weight', 'bias', 'running_mean', 'running_var']) f32(`${bn}.${p}`, [out]);
    infos.set(`${bn}.num_batches_tracked`, { dtype: 'int64', shape: [] });
  }
  conv(`${d}.11`, 1, 512, 4);
  return infos;
}

/** IEEE half bits of a float32 value (round to nearest even; fine for the small values used here). */
function halfBits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 112;
  const mant = u & 0x7fffff;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  const round = (mant & 0x1fff) > 0x1000 || ((mant & 0x1fff) === 0x1000 && (mant & 0x2000) !== 0) ? 1 : 0;
  return (sign | (exp << 10) | (mant >>> 13)) + round;
}

/**
 * Random tensors on demand: floats ~ U(±0.04) (LayerNorm-like weights 1, biases 0), bools from
 * `fixed` (the real masks) or random, integer counters 0.
 */
export function randomTensorSource(infos: Map<string, TensorInfo>, fixed: Map<string, HostTensor> = new Map(), seed = 0x9e3779b9): TensorSource {
  let s = seed >>> 0 || 1;
  const next = (): number => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
  const TABLE = 4096;
  const halves = Uint16Array.from({ length: TABLE }, (_, i) => halfBits(((i + 0.5) / TABLE - 0.5) * 0.08));
  const floats = Float32Array.from({ length: TABLE }, (_, i) => ((i + 0.5) / TABLE - 0.5) * 0.08);
  return {
    keys: () => [...infos.keys()],
    info: (key) => infos.get(key)!,
    read: async (key): Promise<HostTensor> => {
      const hit = fixed.get(key);
      if (hit) return hit;
      const { dtype, shape } = infos.get(key)!;
      const n = numel(shape);
      const ones = /(norm|layernorm|to_logits\.0)[^.]*\.weight$|running_var$/.test(key);
      const zeros = key.endsWith('.bias') || key.endsWith('running_mean');
      switch (dtype) {
        case 'float16': {
          const data = new Uint16Array(n);
          if (ones) data.fill(0x3c00);
          else if (!zeros) for (let i = 0; i < n; i++) data[i] = halves[next() & (TABLE - 1)];
          return { dtype, shape, data };
        }
        case 'float32': {
          const data = new Float32Array(n);
          if (ones) data.fill(1);
          else if (!zeros) for (let i = 0; i < n; i++) data[i] = floats[next() & (TABLE - 1)];
          return { dtype, shape, data };
        }
        case 'bool': {
          const data = new Uint8Array(n);
          for (let i = 0; i < n; i++) data[i] = next() & 1;
          return { dtype, shape, data };
        }
        case 'int64':
          return { dtype, shape, data: new BigInt64Array(n) };
        default:
          throw new Error(`bench: no random ${dtype} tensors (${key})`);
      }
    },
  };
}

/** Writes a RUDOLPH `pytorch_model.bin` like the hub's: Half parameters (or fp32) and the real Bool masks. */
export async function writeRudolphCheckpoint(file: string, cfg: RudolphConfig, opts: { dtype?: FloatDType; seed?: number } = {}): Promise<void> {
  const masks = new Map<string, HostTensor>();
  MASK_KINDS.forEach((kind, i) => masks.set(MASK_BUFFER_NAMES[i], { dtype: 'bool', shape: [cfg.totalLength, cfg.totalLength], data: fullMask(kind, cfg) }));
  await saveTorchCheckpoint(file, randomTensorSource(rudolphCheckpointInfos(cfg, opts.dtype), masks, opts.seed), { archiveName: 'pytorch_model' });
}

/** Writes a Sber-VQGAN checkpoint like the hub's: fp32 model + loss modules with int64 counters. */
export async function writeVqganCheckpoint(file: string, seed?: number): Promise<void> {
  await saveTorchCheckpoint(file, randomTensorSource(vqganCheckpointInfos(), new Map(), seed));
}
