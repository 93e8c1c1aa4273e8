/**
 * Peak memory of loading a RUDOLPH checkpoint laid out like the hub's (issue 15 §4).
 *
 * Writes a random-weight torch zip with the preset's official key set and shapes (default 350M) in
 * the hub's dtypes (Half parameters + 4 Bool masks: 710 MB for 350M; CKPT_DTYPE=float32 gives the
 * fp32 layout of KEYS-350M.txt, 1.42 GB) to os.tmpdir(), then loads it in fresh child processes —
 * once whole (`loadStateDict`) and once streaming (`iterateTensors`, dropping each tensor) — and
 * reports each child's peak RSS against the weight bytes. The file is deleted afterwards.
 *
 *   npx tsx bench/checkpoint-memory.ts        → prints the JSON result
 *   CKPT_PRESET=1.3B CKPT_DTYPE=float32 npx tsx bench/checkpoint-memory.ts
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { iterateTensors, loadStateDict, type TensorInfo } from '../src/io/checkpoint.js';
import { saveTorchCheckpoint } from '../src/io/torch-writer.js';
import { isPresetName, presetConfig, type PresetName } from '../src/presets.js';
import { BYTES_PER_ELEMENT, type DType, numel } from '../src/tensor.js';
import { REPO_ROOT } from '../test/helpers.js';
import { type FloatDType, randomTensorSource, rudolphCheckpointInfos } from './hub-checkpoints.js';

export interface LoadMeasurement {
  /** Peak resident set size of the loading process (bytes). */
  peakRssBytes: number;
  /** Peak RSS of the same process before it opened the checkpoint (runtime baseline). */
  baselineRssBytes: number;
  /** peakRssBytes / weightBytes. */
  ratio: number;
  seconds: number;
}

export interface CheckpointMemoryResult {
  preset: string;
  dtype: string;
  weightBytes: number;
  fileBytes: number;
  tensors: number;
  writeSeconds: number;
  /** loadStateDict: every tensor held at the end. */
  load: LoadMeasurement;
  /** iterateTensors: each tensor dropped after it is yielded (what a converter does). */
  stream: LoadMeasurement;
}

/** Parses KEYS-*.txt: `key<TAB>dtype<TAB>[d0, d1, ...]` lines after `#` comments. */
export async function readKeyList(file: string): Promise<Map<string, TensorInfo>> {
  const out = new Map<string, TensorInfo>();
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const [key, dtype, shape] = line.split('\t');
    out.set(key, { dtype: dtype as DType, shape: JSON.parse(shape) as number[] });
  }
  return out;
}

export async function runCheckpointMemoryBench(opts: { preset?: PresetName; dtype?: FloatDType; keysFile?: string; log?: (msg: string) => void } = {}): Promise<CheckpointMemoryResult> {
  const log = opts.log ?? (() => undefined);
  const preset = opts.preset ?? '350M';
  const dtype = opts.dtype ?? 'float16';
  const infos = opts.keysFile ? await readKeyList(opts.keysFile) : rudolphCheckpointInfos(presetConfig(preset), dtype);
  const weightBytes = [...infos.values()].reduce((s, t) => s + numel(t.shape) * BYTES_PER_ELEMENT[t.dtype], 0);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rudolph-ckpt-bench-'));
  const file = path.join(dir, 'pytorch_model.bin');
  try {
    log(`writing ${infos.size} random tensors (${(weightBytes / 2 ** 20).toFixed(1)} MiB) to ${file}`);
    const t0 = performance.now();
    await saveTorchCheckpoint(file, randomTensorSource(infos));
    const writeSeconds = (performance.now() - t0) / 1000;
    const fileBytes = (await stat(file)).size;
    log('loading whole in a child process');
    const load = await measureInChild(file, 'load', weightBytes);
    log('streaming in a child process');
    const stream = await measureInChild(file, 'stream', weightBytes);
    return { preset: opts.keysFile ?? preset, dtype: opts.keysFile ? 'as listed' : dtype, weightBytes, fileBytes, tensors: infos.size, writeSeconds: round(writeSeconds), load, stream };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function measureInChild(file: string, mode: 'load' | 'stream', weightBytes: number): Promise<LoadMeasurement> {
  const self = fileURLToPath(import.meta.url);
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', self, '--child', mode, file], {
    cwd: REPO_ROOT, maxBuffer: 1 << 20,
  });
  const r = JSON.parse(stdout.trim().split('\n').pop() as string) as LoadMeasurement & { held: number };
  return { peakRssBytes: r.peakRssBytes, baselineRssBytes: r.baselineRssBytes, ratio: round(r.peakRssBytes / weightBytes), seconds: r.seconds };
}

/** Child side: load, then report this process's peak RSS. */
async function child(mode: string, file: string): Promise<void> {
  const baselineRssBytes = process.resourceUsage().maxRSS * 1024;
  const t0 = performance.now();
  // `held` keeps the loaded tensors observably used until the measurement.
  let held = 0;
  if (mode === 'load') {
    const sd = await loadStateDict(file);
    for (const t of sd.values()) held += t.data.length;
  } else {
    for await (const [, t] of iterateTensors(file)) held += t.data.length;
  }
  const seconds = round((performance.now() - t0) / 1000);
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(`${JSON.stringify({ peakRssBytes, baselineRssBytes, seconds, held })}\n`);
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--child');
  if (i >= 0) {
    await child(process.argv[i + 1], process.argv[i + 2]);
  } else {
    const preset = process.env.CKPT_PRESET ?? '350M';
    if (!isPresetName(preset)) throw new Error(`CKPT_PRESET: unknown preset ${preset}`);
    const dtype = (process.env.CKPT_DTYPE ?? 'float16') as FloatDType;
    if (dtype !== 'float16' && dtype !== 'float32') throw new Error('CKPT_DTYPE must be float16 or float32');
    const result = await runCheckpointMemoryBench({ preset, dtype, log: (m) => process.stderr.write(`${m}\n`) });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  }
}
