/**
 * The converted-model cache: the first load of a checkpoint writes the ready-to-run graph
 * (model.onnx + weights.bin) into `<root>/<key>/`, keyed by the checkpoint's sha256, the config,
 * the precision, the LoRA adapters merged into it (their files' sha256) and the converter version; later loads open it by path (RUNTIME.md: the fastest
 * and leanest way into onnxruntime). A stale or damaged conversion is detected and rebuilt.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { RudolphError } from '../errors.js';
import { openCheckpoint } from '../io/checkpoint.js';
import { writeFileAtomic, writeFolderAtomically } from '../io/files.js';
import { hashFile } from '../io/hash.js';
import type { RudolphConfig } from '../model/config.js';
import { DEFAULT_QUANT, type LinearPrecision, type QuantOptions } from '../model/graph-context.js';
import { buildRudolphGraph } from '../model/rudolph-graph.js';
import { RudolphModel, type ModelOptions } from '../model/rudolph-model.js';
import { linearModules, type LoraAdapterWeights, LoraMerger, loraParamName } from '../model/lora.js';
import { checkTensorInfos, parameterSpecs } from '../model/weights.js';
import type { LazyWeight } from '../onnx/graph.js';
import { saveGraph } from '../runtime/node/graph-files.js';
import { toFloat32 } from '../tensor.js';
import type { AdapterFiles } from './adapters.js';

/** Bump when the graph layout changes: old conversions then stop matching (4: keys cached [B, H, P, d]). */
export const CONVERTER_VERSION = 4;

/** Adapters merged into the converted weights, in order. */
export interface MergedAdapters {
  files: readonly AdapterFiles[];
  adapters: readonly LoraAdapterWeights[];
}

export interface ConvertedModelOptions extends ModelOptions {
  /** folder holding conversions (one subfolder per key) */
  root: string;
  /** LoRA adapters merged into the weights at conversion (the key includes their fingerprints) */
  adapters?: MergedAdapters;
  onStage?: (stage: 'fingerprint' | 'convert' | 'open', detail: string) => void;
}

interface Meta {
  converterVersion: number;
  key: string;
  checkpoint: string;
  precision: LinearPrecision;
  adapters: string[];
  modelSha256: string;
  modelBytes: number;
  weightsBytes: number;
  weightsSample: string;
}

/** sha256 of a checkpoint: free for hub blobs (named by their sha256), else hashed once and remembered. */
async function checkpointFingerprint(file: string, root: string): Promise<string> {
  const real = await fsp.realpath(file);
  const base = path.basename(real);
  if (/^[0-9a-f]{64}$/.test(base)) return base;
  const st = await fsp.stat(real);
  const memoFile = path.join(root, 'fingerprints.json');
  const memoKey = `${real}|${st.size}|${st.mtimeMs}`;
  let memo: Record<string, string> = {};
  try { memo = JSON.parse(await fsp.readFile(memoFile, 'utf8')) as Record<string, string>; } catch { memo = {}; }
  if (memo[memoKey]) return memo[memoKey];
  const digest = await hashFile(real, 'sha256');
  memo[memoKey] = digest;
  await writeFileAtomic(memoFile, JSON.stringify(memo));
  return digest;
}

/** A cheap damage check of the big weights file: 64 evenly spread 64 KiB blocks. */
async function sampleHash(file: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const fh = await fsp.open(file, 'r');
  try {
    const block = Buffer.alloc(64 * 1024);
    for (let i = 0; i < 64; i++) {
      const pos = Math.floor((size - Math.min(size, block.length)) * (i / 63));
      const { bytesRead } = await fh.read(block, 0, Math.min(block.length, size), pos);
      hash.update(block.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

function conversionKey(fingerprint: string, cfg: RudolphConfig, precision: LinearPrecision, quant: QuantOptions, adapters: readonly string[]): string {
  // fp32 keys stay as they were (no quant field), and so do keys without adapters: existing conversions remain valid
  const how = precision === 'fp32' ? {} : { quant: { ...DEFAULT_QUANT, ...quant } };
  const merged = adapters.length ? { adapters } : {};
  return createHash('sha256').update(JSON.stringify({ fingerprint, params: cfg.params, precision, ...how, ...merged, v: CONVERTER_VERSION })).digest('hex').slice(0, 32);
}

async function readValidMeta(dir: string, key: string): Promise<Meta | null> {
  try {
    const meta = JSON.parse(await fsp.readFile(path.join(dir, 'meta.json'), 'utf8')) as Meta;
    if (meta.converterVersion !== CONVERTER_VERSION || meta.key !== key) return null;
    const model = await fsp.readFile(path.join(dir, 'model.onnx'));
    if (model.length !== meta.modelBytes || createHash('sha256').update(model).digest('hex') !== meta.modelSha256) return null;
    const weights = path.join(dir, 'weights.bin');
    const st = await fsp.stat(weights);
    if (st.size !== meta.weightsBytes || await sampleHash(weights, st.size) !== meta.weightsSample) return null;
    return meta;
  } catch {
    return null;
  }
}

/** Opens the converted form of `checkpoint`, converting it first when needed. */
export async function openConvertedModel(cfg: RudolphConfig, checkpoint: string, opts: ConvertedModelOptions): Promise<{ model: RudolphModel; converted: boolean; dir: string }> {
  const precision = opts.precision ?? 'fp32';
  opts.onStage?.('fingerprint', checkpoint);
  const adapters = opts.adapters ?? { files: [], adapters: [] };
  const key = conversionKey(await checkpointFingerprint(checkpoint, opts.root), cfg, precision, opts.quant ?? {}, adapters.files.map((f) => f.sha256));
  const dir = path.join(opts.root, key);
  let converted = false;
  if (!(await readValidMeta(dir, key))) {
    await fsp.rm(dir, { recursive: true, force: true });
    opts.onStage?.('convert', checkpoint);
    await convert(cfg, checkpoint, dir, key, precision, adapters, opts.quant);
    converted = true;
  }
  opts.onStage?.('open', dir);
  try {
    return { model: await RudolphModel.fromGraphFile(cfg, path.join(dir, 'model.onnx'), opts), converted, dir };
  } catch (e) {
    if (converted) throw e;
    // a conversion that passes the checks but will not open is damaged too: rebuild once
    await fsp.rm(dir, { recursive: true, force: true });
    await convert(cfg, checkpoint, dir, key, precision, adapters, opts.quant);
    return { model: await RudolphModel.fromGraphFile(cfg, path.join(dir, 'model.onnx'), opts), converted: true, dir };
  }
}

/**
 * Writes the graph reading (and quantising) one tensor at a time from the checkpoint (peak ≈ the
 * largest tensor); adapted weights get their adapters merged as they are read.
 */
async function writeGraph(cfg: RudolphConfig, checkpoint: string, dir: string, precision: LinearPrecision, adapters: MergedAdapters, quant?: QuantOptions): Promise<void> {
  const merger = new LoraMerger();
  const linear = new Map(linearModules(cfg).map((m) => [`${m.name}.weight`, m]));
  const reader = await openCheckpoint(checkpoint);
  try {
    const infos = new Map(reader.keys().map((k) => [k, reader.info(k)]));
    checkTensorInfos(cfg, infos, checkpoint);
    const lazy = new Map<string, LazyWeight>();
    for (const spec of parameterSpecs(cfg)) {
      lazy.set(spec.name, {
        byteLength: 4 * spec.shape.reduce((a, b) => a * b, 1),
        load: async () => {
          let w = toFloat32(await reader.read(spec.name, { toFloat32: true }));
          const lin = linear.get(spec.name);
          for (const adapter of lin ? adapters.adapters : []) {
            const m = adapter.modules.get(lin!.name);
            if (m) w = await merger.merge(w, adapter.tensors.get(loraParamName(lin!.name, 'A'))!, adapter.tensors.get(loraParamName(lin!.name, 'B'))!, lin!.out, lin!.in, m);
          }
          return w;
        },
      });
    }
    await saveGraph(buildRudolphGraph(cfg, lazy, { precision, quant }), dir);
  } finally {
    await reader.close();
    await merger.release();
  }
}

async function convert(cfg: RudolphConfig, checkpoint: string, dir: string, key: string, precision: LinearPrecision, adapters: MergedAdapters, quant?: QuantOptions): Promise<void> {
  try {
    // another process finishing the same conversion first is fine: theirs is kept
    await writeFolderAtomically(dir, async (tmp) => {
      await writeGraph(cfg, checkpoint, tmp, precision, adapters, quant);
      const model = await fsp.readFile(path.join(tmp, 'model.onnx'));
      const wst = await fsp.stat(path.join(tmp, 'weights.bin'));
      const meta: Meta = {
        converterVersion: CONVERTER_VERSION, key, checkpoint, precision, adapters: adapters.files.map((f) => `${f.source} ${f.sha256}`),
        modelSha256: createHash('sha256').update(model).digest('hex'), modelBytes: model.length,
        weightsBytes: wst.size, weightsSample: await sampleHash(path.join(tmp, 'weights.bin'), wst.size),
      };
      await fsp.writeFile(path.join(tmp, 'meta.json'), JSON.stringify(meta, null, 1));
    }, { existing: 'keep-existing' });
  } catch (e) {
    if (e instanceof RudolphError) throw e;
    throw new RudolphError('RUNTIME', `converting ${checkpoint} into ${dir} failed: ${(e as Error).message}`, { cause: e });
  }
}
