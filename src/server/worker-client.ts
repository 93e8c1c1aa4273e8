/**
 * The HTTP side of the inference worker: starts it, waits for the model, runs one job at a
 * time with progress and cancellation, and restarts the worker if it dies mid-job (the job
 * fails; the service keeps going).
 */
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { RudolphError } from '../errors.js';
import type { LoadProgress, RudolphInfo } from '../rudolph.js';
import type { TextToken } from '../generation/streaming.js';
import type { Progress } from '../util/progress.js';
import type { CancelMessage, FromWorker, RunMessage, RunOutcome, ToWorker, WorkerData, WorkerOptions } from './protocol.js';

export interface JobControl {
  onProgress?: (p: Progress) => void;
  /** text tokens as a streaming task samples them */
  onToken?: (t: TextToken) => void;
  signal?: AbortSignal;
}

/** Runs one task at a time; never rejects (failures are outcomes). */
export interface TaskRunner {
  run(job: Omit<RunMessage, 'type'>, control: JobControl): Promise<RunOutcome>;
}

const CLOSE_TIMEOUT_MS = 5000;

interface Live { worker: Worker; control: MessagePort; info: RudolphInfo }

interface Current { id: string; resolve: (o: RunOutcome) => void; onProgress?: (p: Progress) => void; onToken?: (t: TextToken) => void }

export class WorkerClient implements TaskRunner {
  private live: Promise<Live>;
  private current: Current | null = null;
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

  async run(job: Omit<RunMessage, 'type'>, control: JobControl): Promise<RunOutcome> {
    if (this.current) return { ok: false, error: { code: 'INTERNAL', message: `job ${job.id} was sent while job ${this.current.id} still runs` } };
    let live: Live;
    try {
      live = await this.live;
    } catch (e) {
      return { ok: false, error: { code: 'RUNTIME', message: `the inference worker could not be restarted: ${(e as Error).message}` } };
    }
    return new Promise<RunOutcome>((resolve) => {
      const cancel = () => live.control.postMessage({ type: 'cancel', id: job.id } satisfies CancelMessage);
      control.signal?.addEventListener('abort', cancel, { once: true });
      this.current = {
        id: job.id, onProgress: control.onProgress, onToken: control.onToken,
        resolve: (o) => { control.signal?.removeEventListener('abort', cancel); this.current = null; resolve(o); },
      };
      live.worker.postMessage({ type: 'run', ...job } as ToWorker);
      if (control.signal?.aborted) cancel();
    });
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
      if (m.type === 'progress' && this.current?.id === m.id) this.current.onProgress?.(m.progress);
      else if (m.type === 'token' && this.current?.id === m.id) this.current.onToken?.(m.token);
      else if (m.type === 'done' && this.current?.id === m.id) this.current.resolve(m.outcome);
    });
    live.worker.on('error', () => { /* reported through 'exit' */ });
    live.worker.once('exit', (code) => {
      live.control.close();
      if (this.closing) return;
      this.current?.resolve({ ok: false, error: { code: 'RUNTIME', message: `the inference worker stopped unexpectedly (exit code ${code}); it is being restarted` } });
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
