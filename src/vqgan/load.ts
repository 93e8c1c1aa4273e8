/**
 * Reading a VQGAN from disk: a checkpoint in any supported format (the official Lightning
 * `.ckpt`, a plain torch state_dict, safetensors) and its taming YAML config.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { openCheckpoint } from '../io/checkpoint.js';
import type { StateDict } from '../tensor.js';
import { readVqganConfigFile, SBER_VQGAN_CONFIG, validateVqganConfig, type VqganConfig } from './config.js';
import { checkVqganTensorInfos, vqganParameterSpecs, vqganWeightsFromStateDict, type VqganWeights } from './weights.js';

/** A config object, or the path of an official YAML config. */
export type VqganConfigSource = VqganConfig | string;

const isYaml = (f: string) => /\.ya?ml$/i.test(f);

/**
 * The config for a checkpoint when none is given: the one YAML file beside it (the official
 * layout is `vqgan.gumbelf8-sber.config.yml` next to the `.ckpt`), else the Sber preset.
 */
export async function configBeside(checkpoint: string): Promise<VqganConfig> {
  const dir = path.dirname(checkpoint);
  let names: string[];
  try {
    names = (await fsp.readdir(dir)).filter(isYaml).sort();
  } catch {
    names = [];
  }
  if (names.length === 0) return { ...SBER_VQGAN_CONFIG, chMult: [...SBER_VQGAN_CONFIG.chMult], attnResolutions: [...SBER_VQGAN_CONFIG.attnResolutions] };
  if (names.length > 1) {
    throw new ConfigError(`${dir}: several YAML configs beside ${path.basename(checkpoint)} (${names.join(', ')}): pass the config explicitly`);
  }
  return readVqganConfigFile(path.join(dir, names[0]));
}

export async function resolveVqganConfig(source: VqganConfigSource | undefined, checkpoint: string): Promise<VqganConfig> {
  if (source === undefined) return configBeside(checkpoint);
  if (typeof source === 'string') return readVqganConfigFile(source);
  return validateVqganConfig(source);
}

/**
 * Reads the weights a config needs from a checkpoint file: shapes are checked against the config
 * before any tensor is read, and only the model's own tensors are read (a Lightning checkpoint's
 * discriminator and LPIPS tensors are left on disk).
 */
export async function loadVqganWeights(cfg: VqganConfig, file: string): Promise<VqganWeights> {
  const reader = await openCheckpoint(file);
  try {
    checkVqganTensorInfos(cfg, new Map(reader.keys().map((k) => [k, reader.info(k)])), file);
    const sd: StateDict = new Map();
    for (const spec of vqganParameterSpecs(cfg)) sd.set(spec.name, await reader.read(spec.name, { toFloat32: true }));
    return vqganWeightsFromStateDict(cfg, sd, file);
  } finally {
    await reader.close();
  }
}
