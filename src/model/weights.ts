/**
 * The RUDOLPH parameter set: official state_dict names, their shapes for a config, and
 * validation of a loaded state dict (missing / misshapen tensors are typed errors).
 */
import { WeightsError } from '../errors.js';
import { type DType, numel, type ParamSpec, shapeToString, type StateDict, toFloat32 } from '../tensor.js';

interface TensorInfo { dtype: DType; shape: readonly number[] }
import type { RudolphConfig } from './config.js';
import { Rng } from '../util/random.js';


/** Every trainable parameter in the official order (mask buffers excluded). */
export function parameterSpecs(cfg: RudolphConfig): ParamSpec[] {
  const h = cfg.hidden;
  const specs: ParamSpec[] = [
    { name: 'text_embeddings.weight', shape: [cfg.textVocab, h] },
    { name: 'image_embeddings.weight', shape: [cfg.imageVocabTotal, h] },
    { name: 'l_text_pos_embeddings.weight', shape: [cfg.l + 1, h] },
    { name: 'r_text_pos_embeddings.weight', shape: [cfg.r + 1, h] },
    { name: 'image_row_embeddings.weight', shape: [cfg.n, h] },
    { name: 'image_col_embeddings.weight', shape: [cfg.n, h] },
    { name: 'to_logits.0.weight', shape: [h] },
    { name: 'to_logits.0.bias', shape: [h] },
    { name: 'to_logits.1.weight', shape: [cfg.logitsWidth, h] },
    { name: 'to_logits.1.bias', shape: [cfg.logitsWidth] },
  ];
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `transformer.layers.${i}.`;
    for (const ln of ['input_layernorm', 'before_first_addition_layernorm', 'before_second_addition_layernorm', 'post_attention_layernorm']) {
      specs.push({ name: `${p}${ln}.weight`, shape: [h] }, { name: `${p}${ln}.bias`, shape: [h] });
    }
    specs.push(
      { name: `${p}attention.query_key_value.weight`, shape: [3 * h, h] },
      { name: `${p}attention.query_key_value.bias`, shape: [3 * h] },
      { name: `${p}attention.dense.weight`, shape: [h, h] },
      { name: `${p}attention.dense.bias`, shape: [h] },
      { name: `${p}mlp.dense_h_to_4h.weight`, shape: [4 * h, h] },
      { name: `${p}mlp.dense_h_to_4h.bias`, shape: [4 * h] },
      { name: `${p}mlp.dense_4h_to_h.weight`, shape: [h, 4 * h] },
      { name: `${p}mlp.dense_4h_to_h.bias`, shape: [h] },
    );
  }
  specs.push({ name: 'transformer.final_layernorm.weight', shape: [h] }, { name: 'transformer.final_layernorm.bias', shape: [h] });
  return specs;
}

/** The mask buffers the official state_dict also holds (bool [total, total]). */
export const MASK_BUFFER_NAMES = ['transformer.row_mask', 'transformer.col_mask', 'transformer.conv_mask', 'transformer.last_conv_mask'] as const;

/** Name → float32 data of every parameter. */
export type RudolphWeights = Map<string, Float32Array>;

/**
 * Checks tensor names, shapes and dtypes against the config without reading any data. Extra keys
 * other than the mask buffers are reported, since they mean a different model.
 */
export function checkTensorInfos(cfg: RudolphConfig, infos: ReadonlyMap<string, TensorInfo>, source = 'checkpoint'): void {
  const missing: string[] = [];
  const layersInCheckpoint = new Set([...infos.keys()].map((k) => /^transformer\.layers\.(\d+)\./.exec(k)?.[1]).filter((x) => x !== undefined)).size;
  if (layersInCheckpoint > 0 && layersInCheckpoint !== cfg.numLayers) {
    throw new WeightsError(`${source}: the checkpoint has ${layersInCheckpoint} transformer layers but the config's num_layers is ${cfg.numLayers}: the config does not belong to these weights`);
  }
  for (const spec of parameterSpecs(cfg)) {
    const t = infos.get(spec.name);
    if (!t) { missing.push(spec.name); continue; }
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      throw new WeightsError(`${source}: tensor ${spec.name} has shape ${shapeToString(t.shape)}, expected ${shapeToString(spec.shape)} for this config (${shapeOrigin(spec.name)}): the config does not belong to these weights`);
    }
    if (!['float32', 'float16', 'bfloat16', 'float64'].includes(t.dtype)) {
      throw new WeightsError(`${source}: tensor ${spec.name} has dtype ${t.dtype}, expected a floating type`);
    }
  }
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).join(', ');
    throw new WeightsError(`${source}: ${missing.length} tensor(s) missing for this config: ${shown}${missing.length > 5 ? ', …' : ''}`);
  }
  const known = new Set<string>([...parameterSpecs(cfg).map((p) => p.name), ...MASK_BUFFER_NAMES]);
  const extra = [...infos.keys()].filter((k) => !known.has(k));
  if (extra.length > 0) {
    throw new WeightsError(`${source}: unexpected tensor(s) ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''} — not a RUDOLPH model of this config`);
  }
}

/** Which config fields a parameter's shape comes from, for messages about a config that does not fit. */
function shapeOrigin(name: string): string {
  if (name === 'text_embeddings.weight') return 'vocab_size + text_special_tokens, hidden_size';
  if (name === 'image_embeddings.weight') return 'image_vocab_size + image_special_tokens, hidden_size';
  if (name === 'l_text_pos_embeddings.weight') return 'l_text_seq_length + 1, hidden_size';
  if (name === 'r_text_pos_embeddings.weight') return 'r_text_seq_length + 1, hidden_size';
  if (name.startsWith('image_row') || name.startsWith('image_col')) return 'image_tokens_per_dim, hidden_size';
  if (name.startsWith('to_logits.1')) return 'vocab_size + text_special_tokens + image_vocab_size + image_special_tokens, hidden_size';
  return 'hidden_size';
}

/** Checks a state dict against the config and converts every parameter to float32. */
export function weightsFromStateDict(cfg: RudolphConfig, sd: StateDict, source = 'checkpoint'): RudolphWeights {
  checkTensorInfos(cfg, sd, source);
  const out: RudolphWeights = new Map();
  for (const spec of parameterSpecs(cfg)) {
    const data = toFloat32(sd.get(spec.name)!);
    if (data.length !== numel(spec.shape)) throw new WeightsError(`${source}: tensor ${spec.name} holds ${data.length} values, expected ${numel(spec.shape)}`);
    out.set(spec.name, data);
  }
  return out;
}

/**
 * Seeded random weights (for benchmarks and tests): uniform with std 0.02 (GPT's init scale),
 * LayerNorm 1/0, biases 0.
 */
export function randomWeights(cfg: RudolphConfig, seed = 1): RudolphWeights {
  const out: RudolphWeights = new Map();
  const rng = new Rng(seed);
  const bound = 0.02 * Math.sqrt(3);
  for (const spec of parameterSpecs(cfg)) {
    const data = new Float32Array(numel(spec.shape));
    const isLn = /layernorm|to_logits\.0/.test(spec.name);
    if (isLn && spec.name.endsWith('.weight')) data.fill(1);
    else if (!isLn && !spec.name.endsWith('.bias')) rng.fillUniform(data, -bound, bound);
    out.set(spec.name, data);
  }
  return out;
}
