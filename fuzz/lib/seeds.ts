/**
 * Valid inputs built from scratch (the fuzzer needs no test data beside it): small state dicts
 * of every dtype, YouTokenToMe models, RUDOLPH and VQGAN configs.
 */
import { PRESET_NAMES, PRESETS } from '../../src/presets.js';
import type { DType, HostTensor, StateDict } from '../../src/tensor.js';
import { SBER_VQGAN_CONFIG } from '../../src/vqgan/config.js';
import type { FuzzRng } from './rng.js';

const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16', 'float64', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'];

function tensor(rng: FuzzRng, dtype: DType, shape: number[]): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const bytes = rng.bytes(n * { float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1 }[dtype]);
  const buf = bytes.buffer;
  const data = {
    float32: () => new Float32Array(buf), float64: () => new Float64Array(buf), float16: () => new Uint16Array(buf), bfloat16: () => new Uint16Array(buf),
    int64: () => new BigInt64Array(buf), int32: () => new Int32Array(buf), int16: () => new Int16Array(buf), int8: () => new Int8Array(buf),
    uint8: () => new Uint8Array(buf), bool: () => new Uint8Array(buf).map((v) => v & 1),
  }[dtype]();
  return { dtype, shape, data };
}

/** A few tensors of random dtypes and small shapes (scalars and empty ones included). */
export function randomStateDict(rng: FuzzRng, count = rng.range(1, 8)): StateDict {
  const sd: StateDict = new Map();
  for (let k = 0; k < count; k++) {
    const rank = rng.int(4);
    const shape = Array.from({ length: rank }, () => rng.int(6));
    sd.set(rng.pick(['weight', 'bias', 'layers.0.attn.weight', 'embed', 'x', 'ünïcode.名']) + `.${k}`, tensor(rng, rng.pick(DTYPES), shape));
  }
  return sd;
}

/** Characters a tokenizer model may hold: ▁, Cyrillic, Latin, digits, punctuation, an astral one. */
const CHARS = ['▁', ...'абвгдеёжзийклмнопрстуфхцчшщъыьэюя', ...'abcdefghijklmnopqrstuvwxyz', ...'0123456789', ...'.,!?-', '😀'];

/**
 * The text of a valid YouTokenToMe bpe.model: `chars rules` header, `codepoint id` lines, `left
 * right result` rules over tokens that exist, the special ids; all ids a permutation of the vocab.
 */
export function bpeModelText(rng: FuzzRng, o: { chars?: number; rules?: number; chain?: boolean } = {}): string {
  const charCount = Math.min(CHARS.length, o.chars ?? rng.range(1, CHARS.length));
  const chars = ['▁', ...CHARS.slice(1).sort(() => rng.next() - 0.5).slice(0, charCount - 1)];
  const ruleCount = o.rules ?? rng.size(400);
  const specials = [0, 1, 2, 3].map(() => rng.chance(0.8));
  const vocab = chars.length + ruleCount + specials.filter(Boolean).length;
  const ids = Array.from({ length: vocab }, (_, i) => i).sort(() => rng.next() - 0.5);
  let next = 0;
  const specialIds = specials.map((on) => (on ? ids[next++] : -1));
  const known: number[] = [];
  const lines = [`${chars.length} ${ruleCount}`];
  for (const c of chars) {
    const id = ids[next++];
    known.push(id);
    lines.push(`${c.codePointAt(0)} ${id}`);
  }
  for (let k = 0; k < ruleCount; k++) {
    const left = o.chain && known.length > chars.length ? known[known.length - 1] : rng.pick(known);
    const right = rng.pick(known);
    const id = ids[next++];
    known.push(id);
    lines.push(`${left} ${right} ${id}`);
  }
  lines.push(specialIds.join(' '));
  return `${lines.join('\n')}\n`;
}

/** A config.json as the golden folders hold it: model_params (a preset's, or a small one) and sometimes spc_tokens. */
export function rudolphConfigJson(rng: FuzzRng): Record<string, unknown> {
  const params: Record<string, unknown> = rng.chance(0.5)
    ? { ...PRESETS[rng.pick(PRESET_NAMES)].params }
    : {
      num_layers: rng.range(1, 6), hidden_size: 16 * rng.range(1, 8), num_attention_heads: rng.pick([1, 2, 4, 8, 16]), l_text_seq_length: rng.range(1, 64),
      image_tokens_per_dim: rng.range(1, 16), r_text_seq_length: rng.range(1, 64), kernel_size: rng.range(1, 9), last_kernel_size: rng.range(1, 11),
      vocab_size: 512 + 64, image_vocab_size: rng.range(1, 8192), text_special_tokens: rng.range(0, 8), image_special_tokens: rng.range(0, 8),
      embedding_dropout_prob: 0.1, attention_dropout_prob: 0, output_dropout_prob: 0.1, cogview_sandwich_layernorm: true, cogview_pb_relax: rng.chance(0.5),
    };
  const out: Record<string, unknown> = rng.chance(0.8) ? { model_params: params } : params;
  if (rng.chance(0.3)) out.spc_tokens = { '<LT_UNK>': 0, '<RT_UNK>': 1, '<LT_T2I>': 2, '<LT_I2T>': 3, '<LT_T2T>': 4, '<RT_I2T>': 5 };
  return out;
}

/** The official taming config layout (model.params.ddconfig ...) for Sber-VQGAN or a small variant. */
export function vqganConfigObject(rng: FuzzRng): Record<string, unknown> {
  const c = rng.chance(0.5)
    ? SBER_VQGAN_CONFIG
    : { ...SBER_VQGAN_CONFIG, ch: 32, chMult: [1, 2], numResBlocks: 1, attnResolutions: [8], resolution: 16, zChannels: 32, embedDim: 32, nEmbed: 64 };
  return {
    model: {
      base_learning_rate: 4.5e-6,
      target: 'taming.models.vqgan.GumbelVQ',
      params: {
        kl_weight: 1e-8, embed_dim: c.embedDim, n_embed: c.nEmbed, monitor: 'val/rec_loss', temperature_scheduler_config: { target: 'x', params: { warm_up_steps: 0 } },
        ddconfig: {
          double_z: c.doubleZ, z_channels: c.zChannels, resolution: c.resolution, in_channels: c.inChannels, out_ch: c.outCh, ch: c.ch,
          ch_mult: [...c.chMult], num_res_blocks: c.numResBlocks, attn_resolutions: [...c.attnResolutions], dropout: 0,
        },
        lossconfig: { target: 'taming.modules.losses.vqperceptual.DummyLoss' },
      },
    },
  };
}

/** Replaces one value somewhere in a JSON-like tree by something hostile, or deletes / adds a key. */
export function mutateTree(rng: FuzzRng, node: unknown, depth = 0): unknown {
  const hostile = (): unknown => rng.pick<() => unknown>([
    () => rng.interestingInt(), () => -rng.interestingInt(), () => rng.next() * 1e6, () => 1e308, () => -0, () => 0.5,
    () => String(rng.interestingInt()), () => '', () => 'x'.repeat(rng.size(100_000)), () => null, () => true, () => false,
    () => [], () => Array.from({ length: rng.size(5000) }, () => rng.interestingInt()), () => ({}), () => ({ nested: { deeper: [1, 2, 3] } }),
  ])();
  if (Array.isArray(node)) {
    if (node.length === 0 || rng.chance(0.2)) return rng.chance(0.5) ? hostile() : [...node, hostile()];
    const copy = [...node];
    const k = rng.int(copy.length);
    copy[k] = mutateTree(rng, copy[k], depth + 1);
    return copy;
  }
  if (node !== null && typeof node === 'object') {
    const copy: Record<string, unknown> = { ...(node as Record<string, unknown>) };
    const keys = Object.keys(copy);
    const r = rng.next();
    if (keys.length === 0 || r < 0.1) copy[rng.pick(['extra', '__proto__', 'constructor', 'model_params', 'spc_tokens', 'ddconfig'])] = hostile();
    else if (r < 0.2) delete copy[rng.pick(keys)];
    else {
      const k = rng.pick(keys);
      copy[k] = mutateTree(rng, copy[k], depth + 1);
    }
    return copy;
  }
  return rng.chance(0.9) ? hostile() : node;
}
