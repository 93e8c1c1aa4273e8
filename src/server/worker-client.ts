/**
 * The HTTP side of the inference worker: starts it, waits for the model, runs one batch of jobs
 * at a time (usually one job) with progress and cancellation per job, and restarts the worker
 * if it dies mid-batch (its jobs fail with RUNTIME; the service keeps going).
 */
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { RudolphError } from '../errors.js';
import type { LoadProgress, RudolphInfo } from '../rudolph.js';
import type { TextToken } from '../generation/streaming.js';
import type { Progress } from '../util/progress.js';
import type { CancelMessage, FromWorker, JobMessage, RunOutcome, ToWorker, WorkerData, WorkerOptions } from './protocol.js';

export interface JobControl {
  onProgress?: (p: Progress) => void;
  /** text tokens as a streaming task samples them */
  onToken?: (t: TextToken) => void;
  signal?: AbortSignal;
}

/** Runs one task at a time; never rejects (failures are outcomes). */
export interface TaskRunner {
  run(job: JobMessage, control: JobControl): Promise<RunOutcome>;
}

const CLOSE_TIMEOUT_MS = 5000;

interface Live { worker: Worker; control: MessagePort; info: RudolphInfo }

interface Current { resolve: (o: RunOutcome) => void; onProgress?: (p: Progress) => void; onToken?: (t: TextToken) => void }

export class WorkerClient implements TaskRunner {
  private live: Promise<Live>;
  /** the jobs of the batch in the worker, by id */
  private readonly current = new Map<string, Current>();
  private closing = false;

  private constructor(private readonly options: WorkerOptions, private readonly onLoadProgress: (p: LoadProgress) => void, first: Live) {
    this.live = Promise.resolve(first);
    this.watch(first);
  }

  /** Starts the worker and waits until the model is loaded; load errors reject as RudolphError. */
  static async start(options: WorkerOptions, onLoadProgress: (p: LoadProgress) => void = () => {}): Promise<WorkerClient> {
    const live = await spawn(options, onLoadProgress);
    return new WorkerClient(options, onLoadProgress, live);
  }

  /** The loaded model's description (from the latest worker). */
  async info(): Promise<RudolphInfo> { return (await this.live).info; }

  async run(job: JobMessage, control: JobControl): Promise<RunOutcome> {
    return this.runBatch([job], [control])[0];
  }

  /** Runs jobs of one task together (compatible ones batched on the model); one outcome per job. */
  runBatch(jobs: JobMessage[], controls: JobControl[]): Promise<RunOutcome>[] {
    if (this.current.size) {
      const busy = [...this.current.keys()].join(', ');
      return jobs.map((j) => Promise.resolve<RunOutcome>({ ok: false, error: { code: 'INTERNAL', message: `job ${j.id} was sent while ${busy} still runs` } }));
    }
    const outcomes = jobs.map((job, i) => new Promise<RunOutcome>((resolve) => {
      const control = controls[i];
      const cancel = () => void this.live.then((live) => live.control.postMessage({ type: 'cancel', id: job.id } satisfies CancelMessage), () => {});
      control.signal?.addEventListener('abort', cancel, { once: true });
      this.current.set(job.id, {
        onProgress: control.onProgress, onToken: control.onToken,
        resolve: (o) => { control.signal?.removeEventListener('abort', cancel); this.current.delete(job.id); resolve(o); },
      });
      if (control.signal?.aborted) cancel();
    }));
    this.live.then(
      (live) => live.worker.postMessage({ type: 'run', jobs } satisfies ToWorker),
      (e: unknown) => {
        for (const j of jobs) this.current.get(j.id)?.resolve({ ok: false, error: { code: 'RUNTIME', message: `the inference worker could not be restarted: ${(e as Error).message}` } });
      },
    );
    return outcomes;
  }

  /** Lets the running job finish or stop (cancel it first), releases the model, ends the thread. */
  async close(): Promise<void> {
    this.closing = true;
    let live: Live;
    try { live = await this.live; } catch { return; }
    const exited = new Promise<void>((resolve) => live.worker.once('exit', () => resolve()));
    live.worker.postMessage({ type: 'close' } satisfies ToWorker);
    const timer = setTimeout(() => void live.worker.terminate(), CLOSE_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  private watch(live: Live): void {
    live.worker.on('message', (m: FromWorker) => {
      if (m.type === 'progress') this.current.get(m.id)?.onProgress?.(m.progress);
      else if (m.type === 'token') this.current.get(m.id)?.onToken?.(m.token);
      else if (m.type === 'done') this.current.get(m.id)?.resolve(m.outcome);
    });
    live.worker.on('error', () => { /* reported through 'exit' */ });
    live.worker.once('exit', (code) => {
      live.control.close();
      if (this.closing) return;
      for (const c of [...this.current.values()]) c.resolve({ ok: false, error: { code: 'RUNTIME', message: `the inference worker stopped unexpectedly (exit code ${code}); it is being restarted` } });
      this.live = spawn(this.options, this.onLoadProgress);
      this.live.then((next) => this.watch(next), () => { /* the next run reports it */ });
    });
  }
}

function spawn(options: WorkerOptions, onLoadProgress: (p: LoadProgress) => void): Promise<Live> {
  const { port1: control, port2: workerControl } = new MessageChannel();
  const data: WorkerData = { options, control: workerControl };
  const worker = newWorker(data, workerControl);
  return new Promise<Live>((resolve, reject) => {
    let failure: Error | null = null;
    const onMessage = (m: FromWorker) => {
      if (m.type === 'load-progress') onLoadProgress(m.progress);
      else if (m.type === 'ready') { done(); resolve({ worker, control, info: m.info }); }
      else if (m.type === 'load-failed') failure = new RudolphError(m.error.code === 'INTERNAL' ? 'RUNTIME' : m.error.code, m.error.message);
    };
    const onError = (e: Error) => { failure ??= e; };
    const onExit = (code: number) => {
      done();
      control.close();
      reject(failure ?? new RudolphError('RUNTIME', `the inference worker exited while loading the model (exit code ${code})`));
    };
    const done = () => { worker.off('message', onMessage); worker.off('error', onError); worker.off('exit', onExit); };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

function newWorker(workerData: WorkerData, control: MessagePort): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    // running from sources: tsx's loader must be registered inside the worker's own thread first
    const code = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})`
      + `.then((m) => { m.register(); return import(${JSON.stringify(new URL('./worker.ts', here).href)}); });`;
    return new Worker(code, { eval: true, workerData, transferList: [control] });
  }
  return new Worker(new URL('./worker.js', here), { workerData, transferList: [control] });
}
