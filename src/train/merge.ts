/**
 * `rudolph merge`: a model with LoRA adapters merged into its weights (W + (α/r)·B·A), written as a
 * model folder every command, `fromPretrained` and the official code load (config.json,
 * model.safetensors, pytorch_model.bin, bpe.model).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { LoraMerger, mergeLoraInto } from '../model/lora.js';
import type { ModelSourceOptions } from '../load-options.js';
import { loadAdapters } from '../pretrained/adapters.js';
import { loadWeights } from '../pretrained/model-dir.js';
import { resolveModelFiles } from '../pretrained/model-files.js';
import { exportModel } from './export.js';

export interface MergeOptions extends Omit<ModelSourceOptions, 'vqgan' | 'adapters'> {
  /** preset name, model folder or hub repo id */
  model: string;
  /** adapters (folders or hub repos), merged in order */
  adapters: string[];
  /** the folder to write */
  out: string;
  /** also write pytorch_model.bin (default true) */
  torch?: boolean;
  threads?: number;
}

export async function mergeAdapters(o: MergeOptions): Promise<{ dir: string; exported: string[] }> {
  if (!o.adapters.length) throw new InputError('merge: give at least one adapter');
  const files = await resolveModelFiles(o.model, { ...o, vqgan: false });
  const { adapters } = await loadAdapters(files.cfg, o.adapters, { ...o, cacheDir: files.cacheDir });
  const weights = await loadWeights(files.cfg, files.weightsFile);
  const merger = new LoraMerger({ threads: o.threads });
  try {
    for (const adapter of adapters) await mergeLoraInto(files.cfg, weights, adapter, merger);
  } finally {
    await merger.release();
  }
  const exported = await exportModel(files.cfg, weights, o.out, { torch: o.torch });
  if (files.tokenizerFile !== 'custom') {
    const bpe = path.join(o.out, 'bpe.model');
    await fsp.copyFile(files.tokenizerFile, bpe);
    exported.push(bpe);
  }
  return { dir: o.out, exported };
}
