/**
 * Messages between the HTTP process and the inference worker thread.
 *
 * Jobs go over the worker's parentPort; cancels go over a separate control port that the
 * worker can also read synchronously between decoding steps (onnxruntime's run may hold the
 * worker's event loop, which would delay an ordinary 'message' event).
 */
import type { MessagePort } from 'node:worker_threads';
import type { ErrorCode } from '../errors.js';
import type { TextToken } from '../generation/streaming.js';
import type { LinearPrecision } from '../model/graph-context.js';
import type { LoadProgress, RudolphInfo } from '../rudolph.js';
import type { Progress } from '../util/progress.js';
import type { ApiInput, ApiOutput, TaskName } from './schemas.js';

export interface WorkerOptions {
  /** preset name, model folder or hub repo id */
  model: string;
  vqgan?: string;
  tokenizer?: string;
  /** a folder with RealESRGAN_x{2,4,8}.pth (default: the hub's, each scale on first use) */
  upscaler?: string;
  cacheDir?: string;
  revision?: string;
  token?: string;
  /** LoRA adapters merged into the model */
  adapters?: string[];
  threads?: number;
  /** execution provider besides the CPU fallback */
  device?: 'cpu' | 'cuda';
  precision?: LinearPrecision;
  offline?: boolean;
  batchSize?: number;
  /** decoded pixels (width × height) of all the images of one request together */
  maxPixels?: number;
}

export interface JobError {
  /** a RudolphError code, or INTERNAL for anything else thrown */
  code: ErrorCode | 'INTERNAL';
  message: string;
  /** for cancelled jobs: decoding steps run after the worker received the cancel */
  stepsAfterCancel?: number;
}

export type RunOutcome = { ok: true; result: ApiOutput } | { ok: false; error: JobError };

/** One job for the worker thread. */
export interface JobMessage { id: string; task: TaskName; input: ApiInput }

/** Jobs run together: one job, or compatible jobs of one task batched on the model. */
export interface RunMessage { type: 'run'; jobs: JobMessage[] }

export type ToWorker = RunMessage | { type: 'close' };

export interface CancelMessage { type: 'cancel'; id: string }

export type FromWorker =
  | { type: 'load-progress'; progress: LoadProgress }
  | { type: 'ready'; info: RudolphInfo }
  | { type: 'load-failed'; error: JobError }
  | { type: 'progress'; id: string; progress: Progress }
  | { type: 'token'; id: string; token: TextToken }
  | { type: 'done'; id: string; outcome: RunOutcome }
  | { type: 'closed' };

export interface WorkerData { options: WorkerOptions; control: MessagePort }
