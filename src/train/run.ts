/**
 * A fine-tuning run — full, or LoRA adapters over a frozen base: data → micro-batches → Trainer
 * steps, with a JSONL loss log, periodic atomic checkpoints (trained tensors, optimizer moments,
 * step, data position), bit-for-bit `resume`, evaluation on a validation manifest, Ctrl-C →
 * save and stop, and the final export (a model folder, or a PEFT adapter folder and, on request,
 * the merged model).
 *
 * Determinism: data order comes from (seed, epoch), dropout masks from (seed, step, micro-batch)
 * (train/dropout.ts), so a resumed run replays exactly what the uninterrupted run did after its
 * checkpoint, and how often checkpoints are written does not change the trained model.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ensureWritableFolder, recoverFolder, writeFolderAtomically } from '../io/files.js';
import { SafetensorsFile } from '../io/safetensors.js';
import { saveSafetensors } from '../io/safetensors-writer.js';
import type { RudolphConfig } from '../model/config.js';
import type { LossWeights } from '../model/loss.js';
import { LoraMerger, type LoraOptions, loraSetup, loraSpecs, mergeLoraInto } from '../model/lora.js';
import { parameterSpecs, type RudolphWeights } from '../model/weights.js';
import { loadAdapters } from '../pretrained/adapters.js';
import { loadWeights } from '../pretrained/model-dir.js';
import { resolveModelFiles } from '../pretrained/model-files.js';
import { loadVqgan } from '../pretrained/vqgan-files.js';
import { isPresetName, PRESETS } from '../presets.js';
import type { FromPretrainedOptions } from '../rudolph.js';
import { numel, type StateDict } from '../tensor.js';
import { type BadLine, type BadLinePolicy, batchIds, epochBatches, loadDataset } from './data.js';
import { TrainingError } from './errors.js';
import { exportAdapter, exportModel } from './export.js';
import { trainableParameters } from './freeze.js';
import type { ScheduleKind } from './schedule.js';
import { Trainer } from './trainer.js';

export interface FinetuneOptions extends Pick<FromPretrainedOptions, 'cacheDir' | 'endpoint' | 'token' | 'offline' | 'revision' | 'threads' | 'adapters'> {
  data: string;
  val?: string;
  /** model folder, preset or hub repo id */
  model: string;
  /** VQGAN checkpoint file or folder; false: none (text-only data) */
  vqgan?: string | false;
  tokenizer?: string;
  out: string;
  /** stop after this many epochs (default 1 when `steps` is not given) */
  epochs?: number;
  /** stop after this many optimizer steps */
  steps?: number;
  batchSize?: number;
  gradAccum?: number;
  lr?: number;
  weightDecay?: number;
  clip?: number;
  lossWeights?: LossWeights;
  freeze?: string[];
  trainOnly?: string[];
  schedule?: ScheduleKind;
  warmupSteps?: number;
  seed?: number;
  dropout?: boolean;
  resume?: boolean;
  /** start afresh in an `out` that holds an earlier run (its checkpoint, export and log are removed); without it such an `out` is refused */
  overwrite?: boolean;
  /**
   * A text longer than its segment is cut (as the official code does) and counted in the result's
   * `truncated`, with one warning; false refuses such samples as bad lines (CLI --strict-length).
   */
  truncate?: boolean;
  /** optimizer steps between checkpoints (default 50; a last one is always written) */
  checkpointEvery?: number;
  /** optimizer steps between validation losses (default: at every checkpoint) */
  evalEvery?: number;
  onBadLine?: BadLinePolicy;
  /** train LoRA adapters over the frozen model instead of its weights (exported to <out>/adapter) */
  lora?: LoraOptions;
  /** LoRA: also write the merged full model to <out>/model */
  merge?: boolean;
  /** bytes of activations kept per micro-batch (default 1.5 GiB; more is faster, less fits bigger models) */
  activationMemory?: number;
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
  onWarning?: (message: string) => void;
}

export interface TrainProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  samplesPerSecond: number;
  etaSeconds: number;
}

export interface FinetuneResult {
  steps: number;
  /** training loss of the first and the last optimizer step */
  firstLoss: number;
  lastLoss: number;
  valLoss?: number;
  /** stopped by the signal (a checkpoint was saved) */
  interrupted: boolean;
  /** samples (training and validation) with a text cut to fit its segment */
  truncated: number;
  exported: string[];
  /** the model folder written (full fine-tuning, or LoRA with `merge`) */
  model?: string;
  /** the PEFT adapter folder written (LoRA) */
  adapter?: string;
  logFile: string;
}

interface RunState {
  version: 2;
  step: number;
  epoch: number;
  /** micro-batches of `epoch` already consumed */
  batchInEpoch: number;
  seed: number;
  /** fingerprint of what must not change across a resume */
  setup: string;
  firstLoss: number | null;
}

const CHECKPOINT = 'checkpoint';
const TRAINED_FILE = 'trained.safetensors';
const OPTIMIZER_FILE = 'optimizer.safetensors';

/** What an earlier run leaves in its `out`. */
const RUN_FILES = [CHECKPOINT, 'model', 'adapter', 'loss.jsonl'];

/** Every numeric option checked, before anything is loaded: the message names the option and the bound. */
function checkOptions(o: FinetuneOptions): void {
  const integer = (name: string, v: number | undefined, min: number) => {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= min)) throw new TrainingError(`${name} must be an integer ≥ ${min}, got ${v}`);
  };
  const positive = (name: string, v: number | undefined) => {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new TrainingError(`${name} must be > 0, got ${v}`);
  };
  integer('batchSize', o.batchSize, 1);
  integer('gradAccum', o.gradAccum, 1);
  integer('epochs', o.epochs, 1);
  integer('steps', o.steps, 1);
  integer('warmupSteps', o.warmupSteps, 0);
  integer('seed', o.seed, 0);
  integer('checkpointEvery', o.checkpointEvery, 1);
  integer('evalEvery', o.evalEvery, 1);
  integer('threads', o.threads, 1);
  positive('lr', o.lr);
  positive('clip', o.clip);
  if (o.weightDecay !== undefined && !(Number.isFinite(o.weightDecay) && o.weightDecay >= 0)) throw new TrainingError(`weightDecay must be ≥ 0, got ${o.weightDecay}`);
  if (o.lossWeights) {
    const w = [o.lossWeights.left, o.lossWeights.image, o.lossWeights.right];
    if (w.some((x) => !(Number.isFinite(x) && x >= 0)) || w.every((x) => x === 0)) throw new TrainingError(`lossWeights must be three numbers ≥ 0, not all 0, got ${w.join(', ')}`);
  }
  if (o.resume && o.overwrite) throw new TrainingError('resume and overwrite exclude each other: --resume continues the run in --out, --overwrite replaces it');
}

/**
 * The run folder, checked before the model is loaded: an earlier run in it is continued only
 * with `resume` and replaced only with `overwrite` (never silently), and it must be writable.
 */
async function prepareOut(o: FinetuneOptions): Promise<string[]> {
  const existing: string[] = [];
  for (const name of RUN_FILES) {
    if (await fsp.stat(path.join(o.out, name)).then(() => true, () => false)) existing.push(name);
  }
  if (existing.length && !o.resume && !o.overwrite) {
    throw new TrainingError(`--out ${o.out} already holds a run (${existing.join(', ')}): continue it with --resume, or start afresh with --overwrite (which removes it)`);
  }
  try {
    await ensureWritableFolder(o.out);
  } catch (e) {
    throw new TrainingError(`--out ${o.out}: cannot write the run there (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return existing;
}

export async function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  checkOptions(o);
  const merger = new LoraMerger({ threads: o.threads });
  try {
    return await run(o, merger);
  } finally {
    await merger.release();
  }
}

async function run(o: FinetuneOptions, merger: LoraMerger): Promise<FinetuneResult> {
  const seed = o.seed ?? 0;
  const batchSize = o.batchSize ?? 1;
  const gradAccum = o.gradAccum ?? 1;
  if (o.merge && !o.lora) throw new TrainingError('merge applies to LoRA runs (full fine-tuning writes the model itself)');
  const earlier = await prepareOut(o);
  const files = await resolveModelFiles(o.model, { cacheDir: o.cacheDir, endpoint: o.endpoint, token: o.token, offline: o.offline, revision: o.revision, tokenizer: o.tokenizer, vqgan: o.vqgan, signal: o.signal });
  const { cfg } = files;
  const vqgan = files.vqganFile ? await loadVqgan(files.vqganFile, { threads: o.threads }) : undefined;
  const warn = (b: BadLine) => o.onWarning?.(`${b.file}:${b.line}: ${b.reason}`);
  const dataOpts = {
    cfg, tokenizer: files.tokenizer, vqgan, cacheDir: path.join(o.out, 'data-cache'),
    vqganId: files.vqganFile ?? '', onBadLine: o.onBadLine, onWarning: warn, truncate: o.truncate ?? true,
  };
  let train, val;
  try {
    train = await loadDataset(o.data, dataOpts);
    val = o.val ? await loadDataset(o.val, dataOpts) : null;
  } finally {
    await vqgan?.release();
  }
  if (train.samples.length === 0) throw new TrainingError(`${o.data}: no training samples`);

  const perEpoch = Math.ceil(epochBatches(train.samples, batchSize, seed, 0).length / gradAccum);
  const totalSteps = o.steps ?? perEpoch * (o.epochs ?? 1);
  const lora = o.lora ? loraSetup(cfg, o.lora) : null;
  const base = await loadAdapters(cfg, o.adapters ?? [], { cacheDir: o.cacheDir, endpoint: o.endpoint, token: o.token, offline: o.offline, signal: o.signal });
  const setupHash = createHash('sha256').update(JSON.stringify({
    batchSize, gradAccum, lr: o.lr, wd: o.weightDecay, clip: o.clip, lw: o.lossWeights,
    freeze: o.freeze, trainOnly: o.trainOnly, schedule: o.schedule, warmup: o.warmupSteps, seed, dropout: o.dropout, params: cfg.params,
    lora: lora && { rank: lora.rank, alpha: lora.alpha, dropout: lora.dropout, modules: [...lora.modules.keys()] },
    adapters: base.files.map((f) => f.sha256),
  }));
  for (const s of train.samples) setupHash.update(new Uint8Array(s.ids.buffer, s.ids.byteOffset, s.ids.byteLength));
  const setup = setupHash.digest('hex');

  const ckptDir = path.join(o.out, CHECKPOINT);
  let state: RunState = { version: 2, step: 0, epoch: 0, batchInEpoch: 0, seed, setup, firstLoss: null };
  const expected = trainedShapes(cfg, o, lora);
  let saved: Checkpoint | null = null;
  if (o.resume) {
    saved = await readCheckpoint(ckptDir);
    if (saved.state.setup !== setup) throw new TrainingError(`${ckptDir}: the checkpoint was made with other data or options; resume needs the same ones (or start a new --out)`);
    state = saved.state;
    checkSavedTensors(ckptDir, TRAINED_FILE, saved.trained, expected, (name) => name);
    for (const kind of ['m', 'v'] as const) {
      const mine = new Map([...saved.moments].filter(([k]) => k.startsWith(`${kind}/`)));
      checkSavedTensors(ckptDir, OPTIMIZER_FILE, mine, expected, (key) => key.slice(2));
    }
  }
  const trainedTensor = (name: string) => saved!.trained.get(name)!.data as Float32Array;
  // a checkpoint of full fine-tuning that trains every parameter holds the whole model: the base is not read again
  const fromCheckpoint = saved !== null && !lora && expected.size === parameterSpecs(cfg).length;
  let weights: RudolphWeights;
  if (fromCheckpoint) {
    weights = new Map(parameterSpecs(cfg).map((spec) => [spec.name, trainedTensor(spec.name)]));
  } else {
    weights = await loadWeights(cfg, files.weightsFile);
    for (const adapter of base.adapters) await mergeLoraInto(cfg, weights, adapter, merger);
    if (saved && !lora) for (const name of expected.keys()) weights.set(name, trainedTensor(name));
  }
  const trainerOptions = {
    lr: o.lr ?? 1e-4, weightDecay: o.weightDecay ?? 0.01, clipGradNorm: o.clip, lossWeights: o.lossWeights,
    freeze: o.freeze, trainOnly: o.trainOnly, dropout: o.dropout ?? true, threads: o.threads, seed, activationMemory: o.activationMemory,
    schedule: { kind: o.schedule ?? 'constant' as ScheduleKind, warmupSteps: o.warmupSteps, totalSteps },
    lora: o.lora, loraWeights: saved && lora ? new Map([...expected.keys()].map((name) => [name, trainedTensor(name)])) : undefined,
  };
  const trainer = await Trainer.create(cfg, weights, trainerOptions);
  if (saved) {
    const moments = new Map(trainer.trainable.map((name) => [name, {
      m: saved!.moments.get(`m/${name}`)!.data as Float32Array, v: saved!.moments.get(`v/${name}`)!.data as Float32Array,
    }]));
    trainer.loadOptimizerState({ step: state.step, moments });
  }
  saved = null;

  // --overwrite: the earlier run goes only now that model and data have loaded
  if (o.overwrite) for (const name of earlier) await fsp.rm(path.join(o.out, name), { recursive: true, force: true });
  const logFile = path.join(o.out, 'loss.jsonl');
  await fsp.mkdir(o.out, { recursive: true });
  await truncateLog(logFile, state.step, !o.resume);
  const log = async (entry: Record<string, unknown>) => fsp.appendFile(logFile, `${JSON.stringify(entry)}\n`);

  // validation: the training segments without gradients or dropout
  const evaluate = async (): Promise<number | undefined> => {
    if (!val || val.samples.length === 0) return undefined;
    let sum = 0, n = 0;
    for (const batch of epochBatches(val.samples, batchSize, seed, 0)) {
      sum += (await trainer.evaluate(batchIds(batch))).loss * batch.length;
      n += batch.length;
    }
    return sum / n;
  };

  const save = async () => {
    await writeCheckpoint(ckptDir, state, trainer);
  };

  let lastLoss = NaN;
  let valLoss: number | undefined;
  let interrupted = false;
  const started = performance.now();
  let samplesDone = 0;
  let stepsThisRun = 0;
  const checkpointEvery = o.checkpointEvery ?? 50;
  const evalEvery = o.evalEvery ?? checkpointEvery;
  try {
    while (state.step < totalSteps) {
      const batches = epochBatches(train.samples, batchSize, seed, state.epoch);
      while (state.batchInEpoch < batches.length && state.step < totalSteps) {
        if (o.signal?.aborted) { interrupted = true; break; }
        const group = batches.slice(state.batchInEpoch, state.batchInEpoch + gradAccum);
        const res = await trainer.step(group.map((b) => batchIds(b)));
        state.batchInEpoch += group.length;
        state.step = res.step;
        state.firstLoss ??= res.loss;
        lastLoss = res.loss;
        const samples = group.reduce((n, b) => n + b.length, 0);
        samplesDone += samples;
        const elapsed = (performance.now() - started) / 1000;
        const sps = samplesDone / elapsed;
        await log({ step: state.step, epoch: state.epoch, loss: res.loss, left: res.left, image: res.image, right: res.right, lr: res.lr, gradNorm: res.gradNorm, samplesPerSecond: sps });
        o.onProgress?.({ step: state.step, totalSteps, epoch: state.epoch, loss: res.loss, lr: res.lr, samplesPerSecond: sps, etaSeconds: (totalSteps - state.step) * (elapsed / ++stepsThisRun) });
        if (state.step % evalEvery === 0 && val) {
          valLoss = await evaluate();
          await log({ step: state.step, valLoss });
        }
        if (state.step % checkpointEvery === 0 && state.step < totalSteps) await save();
      }
      if (interrupted) break;
      if (state.batchInEpoch >= batches.length) { state.epoch++; state.batchInEpoch = 0; }
    }
    await save();
    if (!interrupted && val) {
      valLoss = await evaluate();
      await log({ step: state.step, valLoss });
    }
  } finally {
    await trainer.release();
  }
  const result: FinetuneResult = { steps: state.step, firstLoss: state.firstLoss ?? NaN, lastLoss, valLoss, interrupted, truncated: train.truncated + (val?.truncated ?? 0), exported: [], logFile };
  if (interrupted) return result;
  if (lora) {
    result.adapter = path.join(o.out, 'adapter');
    result.exported.push(...await exportAdapter(cfg, lora, trainer.adapterTensors(), result.adapter, baseName(o.model)));
    if (o.merge) await mergeLoraInto(cfg, weights, { modules: lora.modules, tensors: new Map(trainer.adapterTensors()) }, merger);
  }
  if (!lora || o.merge) {
    result.model = path.join(o.out, 'model');
    result.exported.push(...await exportModel(cfg, weights, result.model));
    if (files.tokenizerFile !== 'custom') await fsp.copyFile(files.tokenizerFile, path.join(result.model, 'bpe.model'));
  }
  return result;
}

/** What adapter_config.json names as the base: a preset's hub repo, else the model as given. */
function baseName(model: string): string {
  return isPresetName(model) ? PRESETS[model].checkpoint.repo : model;
}

/** The trained tensors' sizes: the trainable parameters, or the LoRA tensors. */
function trainedShapes(cfg: RudolphConfig, o: FinetuneOptions, lora: ReturnType<typeof loraSetup> | null): Map<string, number> {
  if (lora) return new Map(loraSpecs(cfg, lora.modules).map((s) => [s.name, numel(s.shape)]));
  const sizes = new Map(parameterSpecs(cfg).map((s) => [s.name, numel(s.shape)]));
  return new Map(trainableParameters(cfg, { freeze: o.freeze, trainOnly: o.trainOnly }).map((n) => [n, sizes.get(n)!]));
}

/** Keeps the log entries up to the checkpoint's step (a killed run may have logged more, or half a line). */
async function truncateLog(file: string, step: number, fresh: boolean): Promise<void> {
  if (fresh) { await fsp.rm(file, { force: true }); return; }
  let text = '';
  try { text = await fsp.readFile(file, 'utf8'); } catch { return; }
  const kept = text.split('\n').filter((l) => {
    try {
      return (JSON.parse(l) as { step: number }).step <= step;
    } catch {
      return false;
    }
  });
  await fsp.writeFile(file, kept.length ? `${kept.join('\n')}\n` : '');
}

/**
 * A checkpoint is untrusted input too: every expected tensor present, float32, of the right size;
 * nothing else. `nameOf` maps a stored key to the parameter it belongs to.
 */
function checkSavedTensors(dir: string, file: string, saved: StateDict, expected: ReadonlyMap<string, number>, nameOf: (key: string) => string): void {
  const seen = new Set<string>();
  for (const [key, t] of saved) {
    const name = nameOf(key);
    const want = expected.get(name);
    if (want === undefined) throw new TrainingError(`${dir}/${file}: unexpected tensor ${key}`);
    if (t.dtype !== 'float32' || t.data.length !== want) {
      throw new TrainingError(`${dir}/${file}: tensor ${key} is ${t.dtype} with ${t.data.length} values, expected float32 with ${want}`);
    }
    seen.add(name);
  }
  const missing = [...expected.keys()].filter((n) => !seen.has(n));
  if (missing.length) throw new TrainingError(`${dir}/${file}: ${missing.length} tensor(s) missing, e.g. ${missing[0]}`);
}

async function writeCheckpoint(dir: string, state: RunState, trainer: Trainer): Promise<void> {
  // the previous checkpoint stays complete until the new one is in place
  await writeFolderAtomically(dir, (tmp) => fillCheckpoint(tmp, state, trainer), { existing: 'replace' });
}

async function fillCheckpoint(tmp: string, state: RunState, trainer: Trainer): Promise<void> {
  const trained: StateDict = new Map();
  for (const [name, data] of trainer.trainedTensors()) trained.set(name, { dtype: 'float32', shape: [data.length], data });
  await saveSafetensors(path.join(tmp, TRAINED_FILE), trained);
  const moments: StateDict = new Map();
  for (const [name, mom] of trainer.optimizerState().moments) {
    moments.set(`m/${name}`, { dtype: 'float32', shape: [mom.m.length], data: mom.m });
    moments.set(`v/${name}`, { dtype: 'float32', shape: [mom.v.length], data: mom.v });
  }
  await saveSafetensors(path.join(tmp, OPTIMIZER_FILE), moments);
  await fsp.writeFile(path.join(tmp, 'state.json'), JSON.stringify(state, null, 1));
}

interface Checkpoint { state: RunState; trained: StateDict; moments: StateDict }

async function readCheckpoint(wanted: string): Promise<Checkpoint> {
  // a run killed between the two renames of writeCheckpoint left its previous checkpoint as `.old-<pid>`
  const dir = await recoverFolder(wanted) ?? wanted;
  let state: RunState;
  try {
    state = JSON.parse(await fsp.readFile(path.join(dir, 'state.json'), 'utf8')) as RunState;
  } catch (e) {
    throw new TrainingError(`--resume: no readable checkpoint in ${dir} (${(e as Error).message})`);
  }
  const counter = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if ((state.version as number) === 1) throw new TrainingError(`--resume: ${dir} was written by an older rudolph-ts (checkpoint version 1); start a new run`);
  if (state.version !== 2 || !counter(state.step) || !counter(state.epoch) || !counter(state.batchInEpoch) || typeof state.setup !== 'string') {
    throw new TrainingError(`--resume: ${dir}/state.json is not a rudolph-ts checkpoint state (version 2 with step, epoch, batchInEpoch, setup)`);
  }
  const read = async (file: string) => {
    const st = await SafetensorsFile.open(path.join(dir, file));
    const out: StateDict = new Map();
    for (const key of st.keys()) out.set(key, await st.read(key));
    await st.close();
    return out;
  };
  return { state, trained: await read(TRAINED_FILE), moments: await read(OPTIMIZER_FILE) };
}
