/**
 * Reading a VQGAN from disk: a checkpoint in any supported format (the official Lightning
 * `.ckpt`, a plain torch state_dict, safetensors) and its taming YAML config.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { openCheckpoint } from '../io/checkpoint.js';
import type { StateDict } from '../tensor.js';
import { readVqganConfigFile, SBER_VQGAN_CONFIG, validateVqganConfig, type VqganConfig } from '../vqgan/config.js';
import { Vqgan, type VqganOptions } from '../vqgan/vqgan-model.js';
import { checkVqganTensorInfos, vqganParameterSpecs, vqganWeightsFromStateDict, type VqganWeights } from '../vqgan/weights.js';

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
 * The tensors a config needs from a checkpoint file: shapes are checked against the config
 * before any tensor is read, and only the model's own tensors are read (a Lightning checkpoint's
 * discriminator and LPIPS tensors are left on disk).
 */
async function readVqganStateDict(cfg: VqganConfig, file: string): Promise<StateDict> {
  const reader = await openCheckpoint(file);
  try {
    checkVqganTensorInfos(cfg, new Map(reader.keys().map((k) => [k, reader.info(k)])), file);
    const sd: StateDict = new Map();
    for (const spec of vqganParameterSpecs(cfg)) sd.set(spec.name, await reader.read(spec.name, { toFloat32: true }));
    return sd;
  } finally {
    await reader.close();
  }
}

/** Reads and validates the weights a config needs from a checkpoint file. */
export async function loadVqganWeights(cfg: VqganConfig, file: string): Promise<VqganWeights> {
  return vqganWeightsFromStateDict(cfg, await readVqganStateDict(cfg, file), file);
}

export interface VqganLoadOptions extends VqganOptions {
  /** a config, or the path of an official YAML config; default: the YAML beside the checkpoint, else the Sber preset */
  config?: VqganConfigSource;
}

/** Opens a VQGAN checkpoint file with its config (see `VqganLoadOptions.config`). */
export async function loadVqgan(file: string, opts: VqganLoadOptions = {}): Promise<Vqgan> {
  const cfg = await resolveVqganConfig(opts.config, file);
  return Vqgan.fromWeights(cfg, await readVqganStateDict(validateVqganConfig(cfg), file), opts, file);
}
