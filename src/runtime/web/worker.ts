/**
 * The library in a Web Worker (the page's local mode): load a model, run tasks over the same
 * JSON the HTTP API takes and returns, report progress, cancel. Messages:
 *   page → worker: {type: 'load', id, source, options} | {type: 'run', id, task, input} | {type: 'cancel', id}
 *   worker → page: {type: 'progress', id, progress} | {type: 'done', id, result} | {type: 'failed', id, error: {code, message}}
 * `load` answers with the model's info, the device it runs on and, when WebGPU was asked for but
 * cannot run, a note saying why it fell back to WASM.
 * Cancelling: a running task keeps the worker's thread busy (onnxruntime-web's WASM runs resolve
 * as microtasks), so a `cancel` message may only be read when the task is over. A request may
 * therefore carry `cancelFlag`, an Int32Array on a SharedArrayBuffer (cross-origin isolated
 * pages): the page sets element 0 to 1 and the worker sees it at the task's next progress tick.
 * Usage: new Worker(new URL('rudolph-ts/web/worker', import.meta.url), {type: 'module'}).
 */
import { RudolphError } from '../../errors.js';
import type { FromPretrainedOptions } from '../../load-options.js';
import type { LinearPrecision } from '../../model/graph-context.js';
import { Rudolph } from '../../rudolph.js';
import { taskOptionsFromJson, taskResultToJson } from '../../tasks/json-io.js';
import { taskByName, taskCatalog } from '../../tasks/registry.js';
import type { Field } from '../../tasks/spec.js';
import { base64ToBytes } from '../../util/base64.js';
import type { Progress } from '../../util/progress.js';
import { runtime } from '../current.js';
import { configureWebRuntime } from './index.js';
import { webgpuAvailable } from './webgpu.js';

export interface WorkerLoadOptions {
  endpoint?: string;
  revision?: string;
  token?: string;
  offline?: boolean;
  /** 'webgpu' falls back to WASM (with a note) where WebGPU cannot run */
  device?: 'webgpu' | 'wasm';
  precision?: LinearPrecision;
  threads?: number;
  batchSize?: number;
  vqgan?: string | false;
  tokenizer?: string;
  /** largest width × height of an uploaded image (default 100 MP) */
  maxPixels?: number;
}

export type WorkerRequest =
  | { type: 'load'; id: number; source: string; options?: WorkerLoadOptions; cancelFlag?: Int32Array }
  | { type: 'run'; id: number; task: string; input: Record<string, unknown>; cancelFlag?: Int32Array }
  | { type: 'catalog'; id: number }
  | { type: 'cancel'; id: number };

export type WorkerReply =
  | { type: 'progress'; id: number; progress: unknown }
  | { type: 'done'; id: number; result: unknown }
  | { type: 'failed'; id: number; error: { code: string; message: string } };

interface Scope { postMessage(m: WorkerReply): void; addEventListener(t: 'message', f: (e: MessageEvent<WorkerRequest>) => void): void }
const scope = globalThis as unknown as Scope;
const running = new Map<number, AbortController>();
let rudolph: Rudolph | undefined;
let maxPixels: number | undefined;

/** Progress to the page, after checking the page's shared cancel flag. */
function reporter(id: number, ctl: AbortController, flag: Int32Array | undefined) {
  return (progress: unknown) => {
    if (flag && Atomics.load(flag, 0) !== 0 && !ctl.signal.aborted) ctl.abort(new Error('cancelled'));
    scope.postMessage({ type: 'progress', id, progress });
  };
}

async function load(id: number, source: string, o: WorkerLoadOptions, signal: AbortSignal, report: (p: unknown) => void) {
  if (o.threads) configureWebRuntime({ threads: o.threads });
  let device: 'webgpu' | 'wasm' = o.device ?? 'wasm';
  let note: string | undefined;
  if (device === 'webgpu') {
    const gpu = await webgpuAvailable();
    if (!gpu.available) { device = 'wasm'; note = `${gpu.reason}: running on WASM instead`; }
  }
  const base: FromPretrainedOptions = {
    endpoint: o.endpoint, revision: o.revision, token: o.token, offline: o.offline, batchSize: o.batchSize, threads: o.threads,
    vqgan: o.vqgan, tokenizer: o.tokenizer, signal, onProgress: report,
  };
  await rudolph?.release();
  rudolph = undefined;
  try {
    rudolph = await Rudolph.fromPretrained(source, { ...base, precision: o.precision, executionProviders: device === 'webgpu' ? ['webgpu'] : [] });
  } catch (e) {
    if (device !== 'webgpu' || (e as RudolphError).code === 'ABORTED') throw e;
    // WebGPU is there but the session would not start on it (missing features, lost device): WASM
    note = `WebGPU could not run the model (${(e as Error).message}): running on WASM instead`;
    device = 'wasm';
    // the precision chosen for the GPU does not carry over: WASM takes its own default (int8)
    rudolph = await Rudolph.fromPretrained(source, { ...base, executionProviders: [] });
  }
  maxPixels = o.maxPixels;
  return { info: rudolph.info(), device, note, onnxruntime: runtime().onnxruntimeVersion, isolated: globalThis.crossOriginIsolated === true };
}

async function run(task: string, input: Record<string, unknown>, signal: AbortSignal, report: (p: unknown) => void) {
  if (!rudolph) throw new RudolphError('RUNTIME', 'no model loaded yet');
  const found = taskByName(task);
  if (!found) throw new RudolphError('INPUT', `no task ${task}`);
  const decode = (img: string, field: string) => {
    let bytes: Uint8Array;
    try {
      bytes = base64ToBytes(img);
    } catch {
      throw new RudolphError('IMAGE', `${field}: not valid base64`);
    }
    return runtime().decodeImage(bytes, { name: field, maxPixels });
  };
  const options = await taskOptionsFromJson(found.task.fields as Readonly<Record<string, Field>>, input, decode);
  const result = await rudolph.run(found.method, { ...options, signal, onProgress: (p: Progress) => report(p) } as never);
  return taskResultToJson(result);
}

scope.addEventListener('message', (e) => {
  const m = e.data;
  if (m.type === 'cancel') { running.get(m.id)?.abort(new Error('cancelled')); return; }
  const ctl = new AbortController();
  running.set(m.id, ctl);
  const report = reporter(m.id, ctl, m.type === 'catalog' ? undefined : m.cancelFlag);
  const work = m.type === 'load' ? load(m.id, m.source, m.options ?? {}, ctl.signal, report)
    : m.type === 'run' ? run(m.task, m.input, ctl.signal, report)
      : Promise.resolve({ tasks: taskCatalog() });
  work.then(
    (result) => scope.postMessage({ type: 'done', id: m.id, result }),
    (err: unknown) => {
      const code = err instanceof RudolphError ? err.code : 'RUNTIME';
      scope.postMessage({ type: 'failed', id: m.id, error: { code, message: err instanceof Error ? err.message : String(err) } });
    },
  ).finally(() => running.delete(m.id));
});
