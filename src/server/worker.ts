/**
 * The inference worker thread: loads one Rudolph and runs one batch of jobs at a time (one job,
 * or compatible jobs of one task run together on the model), posting progress and the outcome
 * per job. Cancels arrive on the control port. Besides its 'message' event, the port
 * is drained synchronously at every progress tick (tasks tick once per decoding step and check
 * their AbortSignal right after), so a cancelled job stops within one step whether or not the
 * model calls let this thread's event loop turn in between.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { RudolphError } from '../errors.js';
import { DEFAULT_MAX_PIXELS } from '../image/index.js';
import { type LoadProgress, Rudolph } from '../rudolph.js';
import '../runtime/node/index.js';
import type { TextToken } from '../generation/streaming.js';
import type { Progress } from '../util/progress.js';
import type { CancelMessage, FromWorker, JobError, RunMessage, ToWorker, WorkerData } from './protocol.js';
import { runTaskBatch, type TaskLimits } from './task-api.js';

/** Progress is forwarded at most this often (besides stage changes and the end of a stage). */
const PROGRESS_INTERVAL_MS = 50;

interface Running {
  id: string;
  controller: AbortController;
  /** progress ticks so far (one per decoding step or scored batch) */
  ticks: number;
  /** ticks when the cancel was received */
  cancelledAt: number | null;
}

if (!parentPort) throw new Error('src/server/worker.ts runs as a worker thread');
const port = parentPort;
const { options, control } = workerData as WorkerData;
const post = (m: FromWorker) => port.postMessage(m);

/** the jobs of the batch being run */
const current = new Map<string, Running>();
/** cancels that arrived (on their own port) before their job's run message */
const earlyCancels = new Set<string>();

function onCancel(m: CancelMessage): void {
  const job = current.get(m.id);
  if (job) {
    if (job.cancelledAt === null) job.cancelledAt = job.ticks;
    job.controller.abort(new Error('cancelled'));
  } else {
    earlyCancels.add(m.id);
  }
}

function drainControl(): void {
  for (let m = receiveMessageOnPort(control); m; m = receiveMessageOnPort(control)) onCancel(m.message as CancelMessage);
}

function throttled<T extends { stage: string }>(send: (p: T) => void, isEnd: (p: T) => boolean): (p: T) => void {
  let last = 0;
  let stage = '';
  return (p) => {
    const now = performance.now();
    if (p.stage !== stage || isEnd(p) || now - last >= PROGRESS_INTERVAL_MS) {
      last = now;
      stage = p.stage;
      send(p);
    }
  };
}

function toJobError(e: unknown): JobError {
  if (e instanceof RudolphError) return { code: e.code, message: e.message };
  return { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

async function run(m: RunMessage, rudolph: Rudolph): Promise<void> {
  const controls = m.jobs.map((j) => {
    const job: Running = { id: j.id, controller: new AbortController(), ticks: 0, cancelledAt: null };
    current.set(j.id, job);
    const forward = throttled<Progress>((progress) => post({ type: 'progress', id: j.id, progress }), (p) => p.done >= p.total);
    const onProgress = (p: Progress) => {
      job.ticks++;
      drainControl();
      forward(p);
    };
    const onToken = (token: TextToken) => post({ type: 'token', id: j.id, token });
    return { job, control: { signal: job.controller.signal, onProgress, onToken } };
  });
  for (const id of earlyCancels) if (current.has(id)) onCancel({ type: 'cancel', id });
  earlyCancels.clear();
  const limits: TaskLimits = { maxPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS, imageSize: 8 * rudolph.config.n };
  const settled = runTaskBatch(rudolph, m.jobs[0].task, m.jobs.map((j) => j.input), controls.map((c) => c.control), limits);
  await Promise.all(settled.map(async (result, i) => {
    const { job } = controls[i];
    try {
      post({ type: 'done', id: job.id, outcome: { ok: true, result: await result } });
    } catch (e) {
      const error = toJobError(e);
      if (error.code === 'ABORTED' && job.cancelledAt !== null) error.stepsAfterCancel = job.ticks - job.cancelledAt;
      post({ type: 'done', id: job.id, outcome: { ok: false, error } });
    } finally {
      current.delete(job.id);
    }
  }));
}

async function main(): Promise<void> {
  let rudolph: Rudolph;
  try {
    const onProgress = throttled<LoadProgress>((progress) => post({ type: 'load-progress', progress }), (p) => p.stage !== 'download');
    rudolph = await Rudolph.fromPretrained(options.model, {
      vqgan: options.vqgan, tokenizer: options.tokenizer, upscaler: options.upscaler, cacheDir: options.cacheDir, revision: options.revision, token: options.token, adapters: options.adapters,
      threads: options.threads, batchSize: options.batchSize, onProgress,
      executionProviders: options.device === 'cuda' ? ['cuda'] : undefined,
      precision: options.precision, offline: options.offline,
    });
  } catch (e) {
    post({ type: 'load-failed', error: toJobError(e) });
    control.close();
    port.close();
    return;
  }
  control.on('message', onCancel);
  // batches run one after another: the client sends the next only after every job's 'done'
  port.on('message', (m: ToWorker) => {
    if (m.type === 'run') {
      void run(m, rudolph);
    } else {
      void rudolph.release().finally(() => {
        post({ type: 'closed' });
        control.close();
        port.close();
      });
    }
  });
  post({ type: 'ready', info: rudolph.info() });
}

void main();
