/**
 * A fine-tuning run: data → micro-batches → Trainer steps, with a JSONL loss log, periodic
 * atomic checkpoints (weights, optimizer moments, step, data position, seeds), bit-for-bit
 * `resume`, evaluation on a validation manifest, Ctrl-C → save and stop, and the final export.
 *
 * Determinism: data order comes from (seed, epoch); dropout masks come from onnxruntime's
 * generators, which are re-seeded from (seed, step) at the start and at every checkpoint, so a
 * run resumed from a checkpoint replays exactly what the uninterrupted run did after it.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { recoverFolder, writeFolderAtomically } from '../io/files.js';
import { SafetensorsFile } from '../io/safetensors.js';
import { saveSafetensors } from '../io/safetensors-writer.js';
import { LossEvaluator, type LossWeights } from '../model/loss.js';
import { RudolphModel } from '../model/rudolph-model.js';
import { loadWeights } from '../pretrained/model-dir.js';
import { resolveModelFiles } from '../pretrained/model-files.js';
import { loadVqgan } from '../pretrained/vqgan-files.js';
import type { FromPretrainedOptions } from '../rudolph.js';
import type { StateDict } from '../tensor.js';
import { type BadLine, type BadLinePolicy, batchIds, epochBatches, loadDataset } from './data.js';
import { TrainingError } from './errors.js';
import { exportModel } from './export.js';
import type { ScheduleKind } from './schedule.js';
import { Trainer } from './trainer.js';

export interface FinetuneOptions extends Pick<FromPretrainedOptions, 'cacheDir' | 'endpoint' | 'token' | 'offline' | 'revision' | 'threads'> {
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
  /** optimizer steps between checkpoints (default 50; a last one is always written) */
  checkpointEvery?: number;
  /** optimizer steps between validation losses (default: at every checkpoint) */
  evalEvery?: number;
  onBadLine?: BadLinePolicy;
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
  exported: string[];
  logFile: string;
}

interface RunState {
  version: 1;
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

export async function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  const seed = o.seed ?? 0;
  const batchSize = o.batchSize ?? 1;
  const gradAccum = o.gradAccum ?? 1;
  for (const [k, v] of Object.entries({ batchSize, gradAccum })) {
    if (!Number.isInteger(v) || v < 1) throw new TrainingError(`${k} must be a positive integer, got ${v}`);
  }
  const files = await resolveModelFiles(o.model, { cacheDir: o.cacheDir, endpoint: o.endpoint, token: o.token, offline: o.offline, revision: o.revision, tokenizer: o.tokenizer, vqgan: o.vqgan, signal: o.signal });
  const { cfg } = files;
  const vqgan = files.vqganFile ? await loadVqgan(files.vqganFile, { threads: o.threads }) : undefined;
  const warn = (b: BadLine) => o.onWarning?.(`${b.file}:${b.line}: ${b.reason}`);
  const dataOpts = {
    cfg, tokenizer: files.tokenizer, vqgan, cacheDir: path.join(o.out, 'data-cache'),
    vqganId: files.vqganFile ?? '', onBadLine: o.onBadLine, onWarning: warn,
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
  const setupHash = createHash('sha256').update(JSON.stringify({
    batchSize, gradAccum, lr: o.lr, wd: o.weightDecay, clip: o.clip, lw: o.lossWeights,
    freeze: o.freeze, trainOnly: o.trainOnly, schedule: o.schedule, warmup: o.warmupSteps, seed, dropout: o.dropout, params: cfg.params,
  }));
  for (const s of train.samples) setupHash.update(new Uint8Array(s.ids.buffer, s.ids.byteOffset, s.ids.byteLength));
  const setup = setupHash.digest('hex');

  const ckptDir = path.join(o.out, CHECKPOINT);
  let state: RunState = { version: 1, step: 0, epoch: 0, batchInEpoch: 0, seed, setup, firstLoss: null };
  let weights = await loadWeights(cfg, files.weightsFile);
  let moments: StateDict | null = null;
  if (o.resume) {
    const saved = await readCheckpoint(ckptDir);
    if (saved.state.setup !== setup) throw new TrainingError(`${ckptDir}: the checkpoint was made with other data or options; resume needs the same ones (or start a new --out)`);
    state = saved.state;
    checkSavedTensors(ckptDir, 'weights.safetensors', saved.weights, weights, (name) => name);
    for (const [name, t] of saved.weights) weights.set(name, t.data as Float32Array);
    moments = saved.moments;
  }
  const trainerOptions = {
    lr: o.lr ?? 1e-4, weightDecay: o.weightDecay ?? 0.01, clipGradNorm: o.clip, lossWeights: o.lossWeights,
    freeze: o.freeze, trainOnly: o.trainOnly, dropout: o.dropout ?? true, threads: o.threads,
    schedule: { kind: o.schedule ?? 'constant' as ScheduleKind, warmupSteps: o.warmupSteps, totalSteps },
  };
  const trainer = await Trainer.create(cfg, weights, { ...trainerOptions, seed: dropoutSeed(seed, state.step) });
  if (moments) {
    const m = new Map<string, { m: Float32Array; v: Float32Array }>();
    const trainable = new Map(trainer.trainable.map((name) => [name, weights.get(name)!]));
    for (const kind of ['m', 'v'] as const) {
      const mine = new Map([...moments].filter(([k]) => k.startsWith(`${kind}/`)));
      checkSavedTensors(ckptDir, 'optimizer.safetensors', mine, trainable, (key) => key.slice(2));
    }
    for (const name of trainer.trainable) {
      m.set(name, { m: moments.get(`m/${name}`)!.data as Float32Array, v: moments.get(`v/${name}`)!.data as Float32Array });
    }
    trainer.loadOptimizerState({ step: state.step, moments: m });
  }
  weights = trainer.stateDict();

  const logFile = path.join(o.out, 'loss.jsonl');
  await fsp.mkdir(o.out, { recursive: true });
  await truncateLog(logFile, state.step, !o.resume);
  const log = async (entry: Record<string, unknown>) => fsp.appendFile(logFile, `${JSON.stringify(entry)}\n`);

  const evalHolder: { model: RudolphModel | null } = { model: null };
  const evaluator = new LossEvaluator(cfg, { threads: o.threads });
  const evaluate = async (): Promise<number | undefined> => {
    if (!val || val.samples.length === 0) return undefined;
    evalHolder.model ??= await RudolphModel.fromWeights(cfg, weights, { liveWeights: true, threads: o.threads });
    const evalModel = evalHolder.model;
    let sum = 0, n = 0;
    for (const batch of epochBatches(val.samples, batchSize, seed, 0)) {
      const { ids, batch: B } = batchIds(batch);
      const { logits } = await evalModel.forward(ids, B);
      sum += (await evaluator.evaluate(logits!, ids, B, trainer.lossWeights, trainer.lossMode)).loss * B;
      n += B;
    }
    return sum / n;
  };

  const save = async () => {
    await writeCheckpoint(ckptDir, state, trainer);
    await trainer.reseedDropout(dropoutSeed(seed, state.step));
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
    await evalHolder.model?.release();
    await evaluator.release();
    await trainer.release();
  }
  const exported = interrupted ? [] : await exportModel(cfg, weights, path.join(o.out, 'model'));
  if (!interrupted && files.tokenizerFile !== 'custom') await fsp.copyFile(files.tokenizerFile, path.join(o.out, 'model', 'bpe.model'));
  return { steps: state.step, firstLoss: state.firstLoss ?? NaN, lastLoss, valLoss, interrupted, exported, logFile };
}

/** Dropout seed for the stretch of training that starts at `step`. */
export function dropoutSeed(seed: number, step: number): number {
  return createHash('sha256').update(`${seed}:${step}`).digest().readUInt32LE(0);
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
function checkSavedTensors(dir: string, file: string, saved: StateDict, expected: ReadonlyMap<string, Float32Array>, nameOf: (key: string) => string): void {
  const seen = new Set<string>();
  for (const [key, t] of saved) {
    const name = nameOf(key);
    const want = expected.get(name);
    if (!want) throw new TrainingError(`${dir}/${file}: unexpected tensor ${key}`);
    if (t.dtype !== 'float32' || t.data.length !== want.length) {
      throw new TrainingError(`${dir}/${file}: tensor ${key} is ${t.dtype} with ${t.data.length} values, expected float32 with ${want.length}`);
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
  const weights: StateDict = new Map();
  for (const [name, data] of trainer.stateDict()) weights.set(name, { dtype: 'float32', shape: [data.length], data });
  await saveSafetensors(path.join(tmp, 'weights.safetensors'), weights);
  const moments: StateDict = new Map();
  for (const [name, mom] of trainer.optimizerState().moments) {
    moments.set(`m/${name}`, { dtype: 'float32', shape: [mom.m.length], data: mom.m });
    moments.set(`v/${name}`, { dtype: 'float32', shape: [mom.v.length], data: mom.v });
  }
  await saveSafetensors(path.join(tmp, 'optimizer.safetensors'), moments);
  await fsp.writeFile(path.join(tmp, 'state.json'), JSON.stringify(state, null, 1));
}

async function readCheckpoint(wanted: string): Promise<{ state: RunState; weights: StateDict; moments: StateDict }> {
  // a run killed between the two renames of writeCheckpoint left its previous checkpoint as `.old-<pid>`
  const dir = await recoverFolder(wanted) ?? wanted;
  let state: RunState;
  try {
    state = JSON.parse(await fsp.readFile(path.join(dir, 'state.json'), 'utf8')) as RunState;
  } catch (e) {
    throw new TrainingError(`--resume: no readable checkpoint in ${dir} (${(e as Error).message})`);
  }
  const counter = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (state.version !== 1 || !counter(state.step) || !counter(state.epoch) || !counter(state.batchInEpoch) || typeof state.setup !== 'string') {
    throw new TrainingError(`--resume: ${dir}/state.json is not a rudolph-ts checkpoint state (version 1 with step, epoch, batchInEpoch, setup)`);
  }
  const read = async (file: string) => {
    const st = await SafetensorsFile.open(path.join(dir, file));
    const out: StateDict = new Map();
    for (const key of st.keys()) out.set(key, await st.read(key));
    await st.close();
    return out;
  };
  return { state, weights: await read('weights.safetensors'), moments: await read('optimizer.safetensors') };
}

