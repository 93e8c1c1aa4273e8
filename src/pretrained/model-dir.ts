/**
 * Loading a RUDOLPH model folder: `config.json` (official constructor arguments) plus
 * `pytorch_model.bin` (torch zip, preferred: the real format) or `model.safetensors`.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, RudolphError } from '../errors.js';
import { openCheckpoint } from '../io/checkpoint.js';
import { readBoundedFile } from '../io/files.js';
import { configFromJson, type RudolphConfig } from '../model/config.js';
import { checkTensorInfos, parameterSpecs, weightsFromStateDict, type RudolphWeights } from '../model/weights.js';
import type { StateDict } from '../tensor.js';

export const WEIGHT_FILES = ['pytorch_model.bin', 'model.safetensors'] as const;

/** What a model folder must hold, for messages about one that does not. */
export const MODEL_FOLDER_CONTENTS =
  `a model folder holds config.json (the official model_params), the weights as ${WEIGHT_FILES.join(' or ')}, and optionally bpe.model and a VQGAN checkpoint`;

/** A config.json is a few hundred bytes; anything near this is not one. */
const MAX_CONFIG_BYTES = 1 << 20;

/** The weights file a folder holds, preferring the official torch format. */
export function findWeightsFile(dir: string): string {
  for (const f of WEIGHT_FILES) {
    const p = path.join(dir, f);
    if (existsSync(p)) return p;
  }
  throw new RudolphError('CHECKPOINT', `${dir}: no model weights found (expected ${WEIGHT_FILES.join(' or ')}; ${MODEL_FOLDER_CONTENTS})`);
}

/** The config of a model folder; a folder without config.json is named with what it should hold. */
export async function readFolderConfig(dir: string): Promise<RudolphConfig> {
  const file = path.join(dir, 'config.json');
  if (!existsSync(file)) throw new ConfigError(`${dir}: no config.json in this folder (${MODEL_FOLDER_CONTENTS})`);
  return readConfigFile(file);
}

export async function readConfigFile(file: string): Promise<RudolphConfig> {
  let text: string;
  try {
    text = (await readBoundedFile(file, MAX_CONFIG_BYTES)).toString('utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read the model config: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  return configFromJson(json, file);
}

/**
 * Reads weights for a known config from a checkpoint file (any supported format). Names, shapes
 * and dtypes are checked against the config before any tensor is read, so a config that does not
 * fit the checkpoint costs nothing; then only the parameters are read (not the mask buffers).
 */
export async function loadWeights(cfg: RudolphConfig, file: string): Promise<RudolphWeights> {
  const reader = await openCheckpoint(file);
  try {
    checkTensorInfos(cfg, new Map(reader.keys().map((k) => [k, reader.info(k)])), file);
    const sd: StateDict = new Map();
    for (const spec of parameterSpecs(cfg)) sd.set(spec.name, await reader.read(spec.name, { toFloat32: true }));
    return weightsFromStateDict(cfg, sd, file);
  } finally {
    await reader.close();
  }
}

export async function loadRudolphDir(dir: string, cfg?: RudolphConfig): Promise<{ cfg: RudolphConfig; weights: RudolphWeights; weightsFile: string }> {
  const config = cfg ?? await readFolderConfig(dir);
  const weightsFile = findWeightsFile(dir);
  return { cfg: config, weights: await loadWeights(config, weightsFile), weightsFile };
}
