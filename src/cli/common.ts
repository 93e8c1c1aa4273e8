/**
 * Options every model command shares — where the model comes from, how it runs, how results are
 * printed — and the loading of the model they name.
 */
import { type Command, Option } from 'commander';
import { InputError } from '../errors.js';
import type { FromPretrainedOptions, LoadProgress } from '../load-options.js';
import { type LinearPrecision, PRECISION_HELP, PRECISIONS } from '../model/graph-context.js';
import { DEFAULT_PRESET, presetList } from '../presets.js';
import { Rudolph } from '../rudolph.js';
import type { Progress } from '../util/progress.js';
import { formatBytes } from './hub-format.js';
import { ProgressDisplay } from './output.js';

/** Where a model comes from (`addModelSourceOptions`). */
export interface ModelSourceCliOptions {
  model: string;
  vqgan?: string;
  tokenizer?: string;
  /** a folder with RealESRGAN_x{2,4,8}.pth (`addUpscalerOption`) */
  upscaler?: string;
  cacheDir?: string;
  offline?: boolean;
  revision?: string;
  token?: string;
  /** LoRA adapters (folders or hub repos), in order */
  adapter?: string[];
}

/** How a loaded model runs (`addRuntimeOptions`). */
export interface RuntimeCliOptions {
  threads?: number;
  batchSize?: number;
  precision?: LinearPrecision;
  device?: 'cpu' | 'cuda';
}

/** How results are printed (`addOutputOptions`). */
export interface OutputCliOptions {
  json?: boolean;
  quiet?: boolean;
}

export type ModelCliOptions = ModelSourceCliOptions & RuntimeCliOptions & OutputCliOptions;

export function int(name: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min) throw new InputError(`${name} must be an integer ≥ ${min}, got "${v}"`);
    if (n > max) throw new InputError(`${name} must be an integer ≤ ${max}, got "${v}"`);
    return n;
  };
}

export function float(name: string, bounds: { min?: number; exclusiveMin?: number; max?: number } = {}) {
  return (v: string): number => {
    const n = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(v) ? Number(v) : NaN;
    if (!Number.isFinite(n)) throw new InputError(`${name} must be a number, got "${v}"`);
    if (bounds.min !== undefined && n < bounds.min) throw new InputError(`${name} must be ≥ ${bounds.min}, got "${v}"`);
    if (bounds.exclusiveMin !== undefined && n <= bounds.exclusiveMin) throw new InputError(`${name} must be > ${bounds.exclusiveMin}, got "${v}"`);
    if (bounds.max !== undefined && n > bounds.max) throw new InputError(`${name} must be ≤ ${bounds.max}, got "${v}"`);
    return n;
  };
}

export function addModelSourceOptions(cmd: Command): Command {
  return cmd
    .option('-m, --model <dir|preset|repo>', `model folder, preset (${presetList()}) or hub repo id`, DEFAULT_PRESET)
    .option('--vqgan <dir|file>', 'VQGAN checkpoint file or folder (default: the model folder\'s, else the hub\'s)')
    .option('--tokenizer <file>', 'bpe.model file (default: the model folder\'s, else the hub\'s)')
    .option('--cache-dir <dir>', 'hub cache folder (default: HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub)')
    .option('--revision <rev>', 'branch, tag or commit of the model repo')
    .option('--token <token>', 'Hugging Face access token for private or gated repos (default: HF_TOKEN)')
    .option('--offline', 'never use the network (same as HF_HUB_OFFLINE=1)')
    .option('--adapter <dir|repo>', 'LoRA adapter (PEFT format: a folder or hub repo) merged into the model; repeat for several', (v: string, prev: string[] = []) => [...prev, v]);
}

export function addUpscalerOption(cmd: Command): Command {
  return cmd.option('--upscaler <dir>', 'folder with RealESRGAN_x{2,4,8}.pth (default: the hub\'s sberbank-ai/Real-ESRGAN, each scale downloaded on first use)');
}

/** What a command that runs only the upscaler takes: where the weights come from, threads, device, output. */
export function addStandaloneUpscalerOptions(cmd: Command): Command {
  return addOutputOptions(addUpscalerOption(cmd)
    .option('--cache-dir <dir>', 'hub cache folder (default: HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub)')
    .option('--token <token>', 'Hugging Face access token (default: HF_TOKEN)')
    .option('--offline', 'never use the network (same as HF_HUB_OFFLINE=1)')
    .option('--threads <n>', 'onnxruntime threads', int('--threads', 1))
    .addOption(new Option('--device <d>', 'execution provider (cuda needs the CUDA binaries: see README)').choices(['cpu', 'cuda']).default('cpu')));
}

export function addRuntimeOptions(cmd: Command): Command {
  return cmd
    .option('--threads <n>', 'onnxruntime threads', int('--threads', 1))
    .option('--batch-size <n>', 'rows per model call', int('--batch-size', 1))
    .addOption(new Option('--precision <p>', PRECISION_HELP).choices([...PRECISIONS]).default('int8'))
    .addOption(new Option('--device <d>', 'execution provider (cuda needs the CUDA binaries: see README)').choices(['cpu', 'cuda']).default('cpu'));
}

export function addOutputOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'machine-readable JSON on stdout')
    .option('-q, --quiet', 'no progress on stderr');
}

/** The fromPretrained options the model-source and runtime options name. */
export function pretrainedOptions(o: ModelSourceCliOptions & RuntimeCliOptions): FromPretrainedOptions {
  return {
    vqgan: o.vqgan, tokenizer: o.tokenizer, upscaler: o.upscaler, cacheDir: o.cacheDir, offline: o.offline, revision: o.revision, token: o.token, adapters: o.adapter,
    threads: o.threads, batchSize: o.batchSize, precision: o.precision, executionProviders: o.device === 'cuda' ? ['cuda'] : undefined,
  };
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
export async function loadModel(o: ModelSourceCliOptions & RuntimeCliOptions, display: ProgressDisplay, signal?: AbortSignal): Promise<Rudolph> {
  return Rudolph.fromPretrained(o.model, { ...pretrainedOptions(o), signal, onProgress: loadProgress(display) });
}

/** Progress of a task as a bar. */
export function taskProgress(display: ProgressDisplay): (p: Progress) => void {
  return (p) => display.update(`${p.task}: ${p.stage}`, p.done, p.total);
}
