/** Options every model command shares and the loading of the model they name. */
import { Option, type Command } from 'commander';
import { InputError } from '../errors.js';
import { formatBytes } from '../hub/index.js';
import type { LoadProgress } from '../model-files.js';
import { Rudolph } from '../rudolph.js';
import type { Progress } from '../tasks/context.js';
import type { SamplingOptions } from '../tasks/sampling.js';
import { ProgressDisplay } from './output.js';

export interface ModelCliOptions {
  model: string;
  vqgan?: string;
  tokenizer?: string;
  cacheDir?: string;
  token?: string;
  offline?: boolean;
  threads?: number;
  batchSize?: number;
  precision?: 'fp32' | 'int8';
  device?: 'cpu' | 'cuda';
  json?: boolean;
  quiet?: boolean;
}

export interface SamplingCliOptions { seed?: number; topK?: number; topP?: number; temperature?: number }

export function int(name: string, min = 0) {
  return (v: string): number => {
    const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min) throw new InputError(`${name} must be an integer ≥ ${min}, got "${v}"`);
    return n;
  };
}

export function float(name: string) {
  return (v: string): number => {
    const n = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(v) ? Number(v) : NaN;
    if (!Number.isFinite(n)) throw new InputError(`${name} must be a number, got "${v}"`);
    return n;
  };
}

export const TOKEN_HELP = 'Hugging Face access token for private or gated repos (default: HF_TOKEN, else the `huggingface-cli login` token)';

export function addModelOptions(cmd: Command): Command {
  return cmd
    .option('-m, --model <dir|preset|repo>', 'model folder, preset (350M, 350M-v1, 1.3B, 2.7B) or hub repo id', '350M')
    .option('--vqgan <dir|file>', 'VQGAN checkpoint file or folder (default: the model folder\'s, else the hub\'s)')
    .option('--tokenizer <file>', 'bpe.model file (default: the model folder\'s, else the hub\'s)')
    .option('--cache-dir <dir>', 'hub cache folder (default: HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub)')
    .option('--offline', 'never use the network (same as HF_HUB_OFFLINE=1)')
    .option('--token <token>', TOKEN_HELP)
    .option('--threads <n>', 'onnxruntime threads', int('--threads', 1))
    .option('--batch-size <n>', 'rows per model call', int('--batch-size', 1))
    .addOption(new Option('--precision <p>', 'linear layer weights').choices(['fp32', 'int8']).default('fp32'))
    .addOption(new Option('--device <d>', 'execution provider (cuda needs the CUDA binaries: see README)').choices(['cpu', 'cuda']).default('cpu'))
    .option('--json', 'machine-readable JSON on stdout')
    .option('-q, --quiet', 'no progress on stderr');
}

export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .option('--seed <n>', 'random seed (same seed, same result)', int('--seed'))
    .option('--top-k <n>', 'keep the k most likely tokens (0 = off)', int('--top-k'))
    .option('--top-p <p>', 'nucleus sampling mass (1 = off)', float('--top-p'))
    .option('--temperature <t>', 'sampling temperature', float('--temperature'));
}

export function sampling(o: SamplingCliOptions): Partial<SamplingOptions> & { seed?: number } {
  const out: Partial<SamplingOptions> & { seed?: number } = {};
  if (o.seed !== undefined) out.seed = o.seed;
  if (o.topK !== undefined) out.topK = o.topK;
  if (o.topP !== undefined) out.topP = o.topP;
  if (o.temperature !== undefined) out.temperature = o.temperature;
  return out;
}

/** Download / conversion / load progress of a model on stderr. */
export function loadProgress(display: ProgressDisplay): (p: LoadProgress) => void {
  return (p) => {
    if (p.stage === 'download' && p.total) {
      const rate = p.bytesPerSecond ? `${formatBytes(p.bytesPerSecond)}/s` : '';
      const eta = p.etaSeconds != null ? `ETA ${Math.ceil(p.etaSeconds)}s` : '';
      display.update(`download ${p.file}`, p.loaded ?? 0, p.total, [rate, eta].filter(Boolean).join(' '));
    } else if (p.stage !== 'download') {
      display.note(`${p.stage === 'convert' ? 'converting (first use, once)' : 'loading'} ${p.file}`);
    }
  };
}

/** Loads the model the options name, showing download / conversion progress on stderr. */
export async function loadModel(o: ModelCliOptions, display: ProgressDisplay, signal?: AbortSignal): Promise<Rudolph> {
  return Rudolph.fromPretrained(o.model, {
    vqgan: o.vqgan, tokenizer: o.tokenizer, cacheDir: o.cacheDir, token: o.token, offline: o.offline, threads: o.threads,
    batchSize: o.batchSize, precision: o.precision, signal, executionProviders: o.device === 'cuda' ? ['cuda'] : undefined,
    onProgress: loadProgress(display),
  });
}

/** Progress of a task as a bar. */
export function taskProgress(display: ProgressDisplay): (p: Progress) => void {
  return (p) => display.update(`${p.task}: ${p.stage}`, p.done, p.total);
}
