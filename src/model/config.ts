/**
 * RUDOLPH model configuration: the official `ruDolphModel(**model_params)` arguments and the
 * quantities derived from them (vocabulary layout of SPEC §2).
 */
import { ConfigError } from '../errors.js';

/** The official constructor arguments (names as in `model_params`). */
export interface RudolphParams {
  num_layers: number;
  hidden_size: number;
  num_attention_heads: number;
  l_text_seq_length: number;
  image_tokens_per_dim: number;
  r_text_seq_length: number;
  kernel_size: number;
  last_kernel_size: number;
  /** text BPE vocabulary + l positional pad ids (16384 + 64 for 350M) */
  vocab_size: number;
  image_vocab_size: number;
  text_special_tokens: number;
  image_special_tokens: number;
  embedding_dropout_prob: number;
  attention_dropout_prob: number;
  output_dropout_prob: number;
  cogview_sandwich_layernorm: boolean;
  cogview_pb_relax: boolean;
}

export const SPECIAL_TOKEN_NAMES = ['<LT_UNK>', '<RT_UNK>', '<LT_T2I>', '<LT_I2T>', '<LT_T2T>', '<RT_I2T>'] as const;
export type SpecialTokenName = (typeof SPECIAL_TOKEN_NAMES)[number];
/** Special token name → id; -1 means "none" (models without text special tokens). */
export type SpecialTokens = Record<SpecialTokenName, number>;

/** Everything the model, layout and tasks need, derived once from the params. */
export interface RudolphConfig {
  params: RudolphParams;
  numLayers: number;
  hidden: number;
  heads: number;
  headDim: number;
  /** left text length l */
  l: number;
  /** image side n (tokens per row) */
  n: number;
  /** image tokens n² */
  imageLength: number;
  /** right text length r */
  r: number;
  /** l + n² + r */
  totalLength: number;
  kernel: number;
  lastKernel: number;
  /** plain BPE vocabulary size (16384): ids below this are real text tokens */
  bpeVocab: number;
  /** V = vocab_size + text_special_tokens: rows of the text embedding and text logits */
  textVocab: number;
  /** image_vocab_size (sampled image ids) */
  imageVocab: number;
  /** image_vocab_size + image_special_tokens: rows of the image embedding */
  imageVocabTotal: number;
  /** V + image vocab total: width of the logits */
  logitsWidth: number;
  specialTokens: SpecialTokens;
}

/** The official defaults of the arguments every preset shares. */
export const PARAM_DEFAULTS = {
  embedding_dropout_prob: 0.1, attention_dropout_prob: 0.1, output_dropout_prob: 0.1,
  cogview_sandwich_layernorm: true, cogview_pb_relax: true,
} as const;

/** The id of a special token, or null when the model has no text special tokens. */
export function specialId(cfg: RudolphConfig, name: SpecialTokenName): number | null {
  const id = cfg.specialTokens[name];
  return id >= 0 ? id : null;
}

/** The official id of special token k: (vocab_size - l) + (k mod text_special_tokens). */
export function defaultSpecialTokens(p: RudolphParams): SpecialTokens {
  const out = {} as SpecialTokens;
  SPECIAL_TOKEN_NAMES.forEach((name, k) => {
    out[name] = p.text_special_tokens > 0 ? p.vocab_size - p.l_text_seq_length + (k % p.text_special_tokens) : -1;
  });
  return out;
}

/**
 * Sane bounds for every numeric field, checked before anything is sized from them: several
 * times the largest official model (2.7B: 32 layers, hidden 2560, 32 heads, l 384, n 24,
 * r 128, vocab 16384 + 384, 1024 + 1024 specials) and far below what would exhaust memory.
 */
export const PARAM_BOUNDS: Readonly<Record<string, readonly [number, number]>> = {
  num_layers: [1, 256],
  hidden_size: [1, 16384],
  num_attention_heads: [1, 256],
  l_text_seq_length: [1, 2048],
  image_tokens_per_dim: [1, 64],
  r_text_seq_length: [1, 2048],
  kernel_size: [1, 127],
  last_kernel_size: [1, 127],
  vocab_size: [2, 2 ** 20],
  image_vocab_size: [1, 2 ** 20],
  text_special_tokens: [0, 2 ** 16],
  image_special_tokens: [0, 2 ** 16],
};
/** l + n² + r: the attention masks are [T, T]. */
export const MAX_TOTAL_LENGTH = 4096;
/** Parameters a config may describe (2.7B has 2.9·10⁹): a bound on the memory it asks for. */
export const MAX_PARAMETERS = 2e10;

const DROPOUTS = ['embedding_dropout_prob', 'attention_dropout_prob', 'output_dropout_prob'] as const;
const FLAGS = ['cogview_sandwich_layernorm', 'cogview_pb_relax'] as const;

/** Parameters the config describes (embeddings, positions, layers, logits), for the size bound. */
export function parameterCount(p: RudolphParams): number {
  const h = p.hidden_size;
  const text = p.vocab_size + p.text_special_tokens;
  const image = p.image_vocab_size + p.image_special_tokens;
  const positions = p.l_text_seq_length + 1 + p.r_text_seq_length + 1 + 2 * p.image_tokens_per_dim;
  const layer = 12 * h * h + 13 * h;
  return (text + image + positions) * h + p.num_layers * layer + 2 * h + (text + image) * (h + 1) + 2 * h;
}

/** Validates params and derives the config. `specialTokens` overrides the official rule. */
export function makeConfig(p: RudolphParams, specialTokens?: Partial<SpecialTokens>): RudolphConfig {
  for (const [k, [min, max]] of Object.entries(PARAM_BOUNDS)) {
    const v = (p as unknown as Record<string, unknown>)[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      const what = min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : 'an integer';
      throw new ConfigError(`config: ${k} must be ${what} ≤ ${max}${min > 1 ? ` and ≥ ${min}` : ''}, got ${JSON.stringify(v)}`);
    }
  }
  for (const k of DROPOUTS) {
    const v: unknown = p[k];
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new ConfigError(`config: ${k} must be a probability in [0, 1), got ${JSON.stringify(v)}`);
  }
  for (const k of FLAGS) {
    if (typeof p[k] !== 'boolean') throw new ConfigError(`config: ${k} must be true or false, got ${JSON.stringify(p[k])}`);
  }
  if (p.hidden_size % p.num_attention_heads !== 0) {
    throw new ConfigError(`config: hidden_size ${p.hidden_size} is not divisible by num_attention_heads ${p.num_attention_heads}`);
  }
  if (p.vocab_size <= p.l_text_seq_length) {
    throw new ConfigError(`config: vocab_size ${p.vocab_size} must exceed l_text_seq_length ${p.l_text_seq_length} (it includes the l positional pad ids)`);
  }
  const total = p.l_text_seq_length + p.image_tokens_per_dim ** 2 + p.r_text_seq_length;
  if (total > MAX_TOTAL_LENGTH) {
    throw new ConfigError(`config: l_text_seq_length + image_tokens_per_dim² + r_text_seq_length is ${total}, over the ${MAX_TOTAL_LENGTH} tokens a sequence may have`);
  }
  const count = parameterCount(p);
  if (count > MAX_PARAMETERS) {
    throw new ConfigError(`config: describes ${count.toExponential(2)} parameters (hidden_size ${p.hidden_size}, num_layers ${p.num_layers}, vocabularies ${p.vocab_size} + ${p.image_vocab_size}), over the ${MAX_PARAMETERS.toExponential(0)} this library loads`);
  }
  if (specialTokens !== undefined && (typeof specialTokens !== 'object' || specialTokens === null || Array.isArray(specialTokens))) {
    throw new ConfigError(`config: spc_tokens must map special token names to ids, got ${JSON.stringify(specialTokens)}`);
  }
  const l = p.l_text_seq_length;
  const n = p.image_tokens_per_dim;
  const r = p.r_text_seq_length;
  const textVocab = p.vocab_size + p.text_special_tokens;
  const imageVocabTotal = p.image_vocab_size + p.image_special_tokens;
  const spc = { ...defaultSpecialTokens(p), ...(specialTokens ?? {}) };
  for (const [name, id] of Object.entries(spc)) {
    if (!Number.isInteger(id) || id < -1 || id >= textVocab) throw new ConfigError(`config: special token ${name} id ${id} is outside the text vocabulary [0, ${textVocab})`);
  }
  return {
    params: p,
    numLayers: p.num_layers,
    hidden: p.hidden_size,
    heads: p.num_attention_heads,
    headDim: p.hidden_size / p.num_attention_heads,
    l, n, r,
    imageLength: n * n,
    totalLength: l + n * n + r,
    kernel: p.kernel_size,
    lastKernel: p.last_kernel_size,
    bpeVocab: p.vocab_size - l,
    textVocab,
    imageVocab: p.image_vocab_size,
    imageVocabTotal,
    logitsWidth: textVocab + imageVocabTotal,
    specialTokens: spc,
  };
}

/**
 * Reads a model folder's `config.json`: either `{"model_params": {...}, "spc_tokens"?: {...}}`
 * (the official constructor arguments, as in the golden folders) or the bare params object.
 */
export function configFromJson(json: unknown, source = 'config.json'): RudolphConfig {
  if (typeof json !== 'object' || json === null) throw new ConfigError(`${source}: expected a JSON object`);
  const obj = json as Record<string, unknown>;
  const raw = (typeof obj.model_params === 'object' && obj.model_params !== null ? obj.model_params : obj) as Record<string, unknown>;
  const params = { ...PARAM_DEFAULTS, text_special_tokens: 0, image_special_tokens: 0, ...raw } as RudolphParams;
  const spc = obj.spc_tokens as Partial<SpecialTokens> | undefined;
  try {
    return makeConfig(params, spc);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${source}: ${e.message}`);
    throw e;
  }
}

/** The JSON written beside exported weights (readable by `configFromJson` and the official code). */
export function configToJson(c: RudolphConfig): Record<string, unknown> {
  return { model_params: c.params, spc_tokens: c.specialTokens };
}
