/**
 * Loading a RUDOLPH model folder: `config.json` (official constructor arguments) plus
 * `pytorch_model.bin` (torch zip, preferred: the real format) or `model.safetensors`.
 */
import { promises as fsp, existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, RudolphError } from '../errors.js';
import { loadStateDict } from '../io/checkpoint.js';
import { configFromJson, type RudolphConfig } from '../model/config.js';
import { weightsFromStateDict, type RudolphWeights } from '../model/weights.js';

export const WEIGHT_FILES = ['pytorch_model.bin', 'model.safetensors'] as const;

/** The weights file a folder holds, preferring the official torch format. */
export function findWeightsFile(dir: string): string {
  for (const f of WEIGHT_FILES) {
    const p = path.join(dir, f);
    if (existsSync(p)) return p;
  }
  throw new RudolphError('CHECKPOINT', `${dir}: no model weights found (expected ${WEIGHT_FILES.join(' or ')})`);
}

export async function readConfigFile(file: string): Promise<RudolphConfig> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
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

/** Reads weights for a known config from a checkpoint file (any supported format). */
export async function loadWeights(cfg: RudolphConfig, file: string): Promise<RudolphWeights> {
  const sd = await loadStateDict(file, { toFloat32: true });
  return weightsFromStateDict(cfg, sd, file);
}

export async function loadRudolphDir(dir: string, cfg?: RudolphConfig): Promise<{ cfg: RudolphConfig; weights: RudolphWeights; weightsFile: string }> {
  const config = cfg ?? await readConfigFile(path.join(dir, 'config.json'));
  const weightsFile = findWeightsFile(dir);
  return { cfg: config, weights: await loadWeights(config, weightsFile), weightsFile };
}
