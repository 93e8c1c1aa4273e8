/**
 * Peak memory of loading a RUDOLPH-350M-sized torch checkpoint.
 *
 * Writes a random-weight torch zip with the exact 350M key set / dtypes / shapes of
 * KEYS-350M.txt (1.42 GB fp32) to os.tmpdir(), then loads it in fresh child processes — once whole
 * (`loadStateDict`) and once streaming (`iterateTensors`, dropping each tensor) — and reports each
 * child's peak RSS against the weight bytes. The file is deleted afterwards.
 *
 *   npx tsx bench/checkpoint-memory.ts        → prints the JSON result
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { iterateTensors, loadStateDict, type TensorInfo, type TensorSource } from '../src/io/checkpoint.js';
import { saveTorchCheckpoint } from '../src/io/torch-writer.js';
import { BYTES_PER_ELEMENT, type DType, type HostTensor, numel } from '../src/tensor.js';
import { GOLDEN_DIR, REPO_ROOT } from '../test/helpers.js';

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
  weightBytes: number;
  fileBytes: number;
  tensors: number;
  writeSeconds: number;
  /** loadStateDict: every tensor held at the end. */
  load: LoadMeasurement;
  /** iterateTensors: each tensor dropped after it is yielded (what a converter does). */
  stream: LoadMeasurement;
}

const KEYS_350M = path.join(GOLDEN_DIR, 'KEYS-350M.txt');

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

/** Random weights generated on demand, so writing never holds more than one tensor. */
function randomSource(infos: Map<string, TensorInfo>): TensorSource {
  let seed = 0x9e3779b9;
  const next = (): number => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return (seed >>> 0) / 4294967296;
  };
  return {
    keys: () => [...infos.keys()],
    info: (key) => infos.get(key) as TensorInfo,
    read: async (key): Promise<HostTensor> => {
      const { dtype, shape } = infos.get(key) as TensorInfo;
      const n = numel(shape);
      if (dtype === 'bool') {
        const data = new Uint8Array(n);
        for (let i = 0; i < n; i++) data[i] = next() < 0.5 ? 1 : 0;
        return { dtype, shape, data };
      }
      if (dtype !== 'float32') throw new Error(`bench: unexpected dtype ${dtype} for ${key}`);
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = (next() - 0.5) * 0.04;
      return { dtype, shape, data };
    },
  };
}

export async function runCheckpointMemoryBench(opts: { keysFile?: string; log?: (msg: string) => void } = {}): Promise<CheckpointMemoryResult> {
  const log = opts.log ?? (() => undefined);
  const infos = await readKeyList(opts.keysFile ?? KEYS_350M);
  const weightBytes = [...infos.values()].reduce((s, t) => s + numel(t.shape) * BYTES_PER_ELEMENT[t.dtype], 0);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rudolph-ckpt-bench-'));
  const file = path.join(dir, 'pytorch_model.bin');
  try {
    log(`writing ${infos.size} random tensors (${(weightBytes / 2 ** 20).toFixed(1)} MiB) to ${file}`);
    const t0 = performance.now();
    await saveTorchCheckpoint(file, randomSource(infos));
    const writeSeconds = (performance.now() - t0) / 1000;
    const fileBytes = (await stat(file)).size;
    log('loading whole in a child process');
    const load = await measureInChild(file, 'load', weightBytes);
    log('streaming in a child process');
    const stream = await measureInChild(file, 'stream', weightBytes);
    return { weightBytes, fileBytes, tensors: infos.size, writeSeconds: round(writeSeconds), load, stream };
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
    const result = await runCheckpointMemoryBench({ log: (m) => process.stderr.write(`${m}\n`) });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  }
}
