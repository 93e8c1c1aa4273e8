/**
 * Exporting weights: `model.safetensors` + `config.json` (loadable by every command and by
 * `fromPretrained`), and `pytorch_model.bin` in the torch zip format with the official key names
 * and the four mask buffers (the official `load_state_dict` is strict about them).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { WeightsError } from '../errors.js';
import { writeFileAtomic } from '../io/files.js';
import { saveSafetensors } from '../io/safetensors-writer.js';
import { saveTorchCheckpoint } from '../io/torch-writer.js';
import { configToJson, type RudolphConfig } from '../model/config.js';
import { fullMask, MASK_KINDS } from '../model/masks.js';
import { MASK_BUFFER_NAMES, parameterSpecs, type RudolphWeights } from '../model/weights.js';
import type { StateDict } from '../tensor.js';

/** The official state_dict: every parameter (official order) plus the bool mask buffers. */
function officialStateDict(cfg: RudolphConfig, weights: RudolphWeights): StateDict {
  const sd: StateDict = new Map();
  for (const spec of parameterSpecs(cfg)) {
    const data = weights.get(spec.name);
    if (!data) throw new WeightsError(`export: missing parameter ${spec.name}`);
    sd.set(spec.name, { dtype: 'float32', shape: spec.shape, data });
  }
  MASK_KINDS.forEach((kind, i) => {
    sd.set(MASK_BUFFER_NAMES[i], { dtype: 'bool', shape: [cfg.totalLength, cfg.totalLength], data: fullMask(kind, cfg) });
  });
  return sd;
}

export interface ExportOptions {
  /** also write pytorch_model.bin (default true) */
  torch?: boolean;
}

/** Writes config.json, model.safetensors and (by default) pytorch_model.bin into `dir`, each atomically. */
export async function exportModel(cfg: RudolphConfig, weights: RudolphWeights, dir: string, opts: ExportOptions = {}): Promise<string[]> {
  await fsp.mkdir(dir, { recursive: true });
  const sd = officialStateDict(cfg, weights);
  const written: string[] = [];
  const safetensors = path.join(dir, 'model.safetensors');
  await saveSafetensors(safetensors, sd, { metadata: { format: 'pt', producer: 'rudolph-ts' } });
  written.push(safetensors);
  if (opts.torch ?? true) {
    const bin = path.join(dir, 'pytorch_model.bin');
    await saveTorchCheckpoint(bin, sd, { archiveName: 'pytorch_model' });
    written.push(bin);
  }
  const config = path.join(dir, 'config.json');
  await writeFileAtomic(config, `${JSON.stringify(configToJson(cfg), null, 1)}\n`);
  written.push(config);
  return written;
}
