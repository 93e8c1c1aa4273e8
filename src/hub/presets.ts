/** Where each RUDOLPH preset's files live on the Hugging Face hub (SPEC §1). */

export type HubPresetName = '350M' | '350M-v1' | '1.3B' | '2.7B';

export interface HubFileLocation {
  repo: string;
  file: string;
}

export interface PresetFiles {
  model: HubFileLocation;
  tokenizer: HubFileLocation;
  vqgan: HubFileLocation;
}

/** Every RUDOLPH model uses the same ruDALL-E tokenizer and Sber-VQGAN. */
export const TOKENIZER_FILE: HubFileLocation = { repo: 'shonenkov/rudalle-utils', file: 'bpe.model' };
export const VQGAN_FILE: HubFileLocation = { repo: 'sberbank-ai/rudalle-utils', file: 'vqgan.gumbelf8-sber.model.ckpt' };
/** The checkpoint name in every RUDOLPH model repo. */
export const CHECKPOINT_FILE = 'pytorch_model.bin';

function preset(modelRepo: string): PresetFiles {
  return { model: { repo: modelRepo, file: CHECKPOINT_FILE }, tokenizer: TOKENIZER_FILE, vqgan: VQGAN_FILE };
}

export const PRESET_FILES: Readonly<Record<HubPresetName, PresetFiles>> = {
  '350M': preset('shonenkov-AI/RuDOLPH-350M-v2'),
  '350M-v1': preset('sberbank-ai/RuDOLPH-350M'),
  '1.3B': preset('sberbank-ai/RUDOLPH-1.3B'),
  '2.7B': preset('sberbank-ai/RUDOLPH-2.7B'),
};

export function isHubPresetName(name: string): name is HubPresetName {
  return Object.hasOwn(PRESET_FILES, name);
}
