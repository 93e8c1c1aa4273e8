/**
 * The official RUDOLPH models in one table (SPEC §1): for each preset, the constructor arguments
 * of the official `ruDolphModel` and where its checkpoint, tokenizer and VQGAN live on the
 * Hugging Face hub. Everything that names a preset (model loading, downloads, CLI help, `info`)
 * reads this table. Adding a preset = one entry here.
 */
import { makeConfig, PARAM_DEFAULTS, type RudolphConfig, type RudolphParams } from './model/config.js';

/** A file in a hub repo. */
export interface HubFile {
  repo: string;
  file: string;
}

export interface Preset {
  /** one line for help texts */
  description: string;
  params: RudolphParams;
  checkpoint: HubFile;
  tokenizer: HubFile;
  vqgan: HubFile;
}

/** Every RUDOLPH model uses the ruDALL-E tokenizer and the Sber VQGAN. */
export const TOKENIZER_FILE: HubFile = { repo: 'shonenkov/rudalle-utils', file: 'bpe.model' };
export const VQGAN_FILE: HubFile = { repo: 'sberbank-ai/rudalle-utils', file: 'vqgan.gumbelf8-sber.model.ckpt' };

type Shape = Omit<RudolphParams, keyof typeof PARAM_DEFAULTS>;

function preset(description: string, repo: string, shape: Shape): Preset {
  return {
    description,
    params: { ...PARAM_DEFAULTS, ...shape },
    checkpoint: { repo, file: 'pytorch_model.bin' },
    tokenizer: TOKENIZER_FILE,
    vqgan: VQGAN_FILE,
  };
}

export const PRESETS = {
  '350M': preset('RUDOLPH-350M v2 (the default)', 'shonenkov-AI/RuDOLPH-350M-v2', {
    num_layers: 24, hidden_size: 1024, num_attention_heads: 16, l_text_seq_length: 64, image_tokens_per_dim: 16, r_text_seq_length: 64,
    kernel_size: 7, last_kernel_size: 9, vocab_size: 16384 + 64, image_vocab_size: 8192, text_special_tokens: 384, image_special_tokens: 384,
  }),
  '350M-v1': preset('RUDOLPH-350M v1 (no special tokens)', 'sberbank-ai/RuDOLPH-350M', {
    num_layers: 24, hidden_size: 1024, num_attention_heads: 16, l_text_seq_length: 64, image_tokens_per_dim: 16, r_text_seq_length: 64,
    kernel_size: 7, last_kernel_size: 9, vocab_size: 16384 + 64, image_vocab_size: 8192, text_special_tokens: 0, image_special_tokens: 0,
  }),
  '1.3B': preset('RUDOLPH-1.3B', 'sberbank-ai/RUDOLPH-1.3B', {
    num_layers: 24, hidden_size: 2048, num_attention_heads: 16, l_text_seq_length: 128, image_tokens_per_dim: 32, r_text_seq_length: 128,
    kernel_size: 9, last_kernel_size: 11, vocab_size: 16384 + 128, image_vocab_size: 8192, text_special_tokens: 2048, image_special_tokens: 64,
  }),
  '2.7B': preset('RUDOLPH-2.7B', 'sberbank-ai/RUDOLPH-2.7B', {
    num_layers: 32, hidden_size: 2560, num_attention_heads: 32, l_text_seq_length: 384, image_tokens_per_dim: 24, r_text_seq_length: 128,
    kernel_size: 7, last_kernel_size: 9, vocab_size: 16384 + 384, image_vocab_size: 8192, text_special_tokens: 1024, image_special_tokens: 1024,
  }),
} as const satisfies Record<string, Preset>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];
/** The model loaded when none is named. */
export const DEFAULT_PRESET: PresetName = '350M';

export function isPresetName(name: string): name is PresetName {
  return Object.hasOwn(PRESETS, name);
}

export function presetConfig(name: PresetName): RudolphConfig {
  return makeConfig(PRESETS[name].params);
}

/** "350M, 350M-v1, 1.3B, 2.7B" for help texts and messages. */
export function presetList(): string {
  return PRESET_NAMES.join(', ');
}
