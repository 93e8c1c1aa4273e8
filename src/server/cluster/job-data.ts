/**
 * A job as BullMQ holds it, shared by fronts and workers: the data (task, input, who asked),
 * how failures are recorded (a JSON `{code, message, stepsAfterCancel?}` as the failed reason),
 * and the conversion of a BullMQ job into the API's JobView.
 */
import type { Job, JobState as BullState } from 'bullmq';
import type { Progress } from '../../util/progress.js';
import type { JobFailure, JobState, JobView } from '../backend.js';
import type { ApiInput, ApiOutput, TaskName } from '../schemas.js';

export interface ClusterJobData {
  task: TaskName;
  /** the request; dropped (null) once the job has finished, so only the result is kept */
  input: ApiInput | null;
  sync: boolean;
  /** digest of the request, for Idempotency-Key checks */
  hash?: string;
}

export type ClusterJob = Job<ClusterJobData, ApiOutput, string>;

export interface RecordedFailure extends JobFailure { stepsAfterCancel?: number }

/** The failed reason BullMQ stores: our failure as JSON. */
export function failureReason(f: RecordedFailure): string {
  return JSON.stringify(f);
}

/** Reads a failed reason back; BullMQ's own ones (e.g. a job that stalled too often) become RUNTIME failures. */
export function parseFailure(reason: string | undefined): RecordedFailure {
  if (reason?.startsWith('{')) {
    try {
      const f = JSON.parse(reason) as RecordedFailure;
      if (typeof f.code === 'string' && typeof f.message === 'string') return f;
    } catch { /* not ours */ }
  }
  const message = reason ?? 'the job failed';
  if (/stalled more than allowable limit/.test(message)) {
    return { code: 'WORKER_LOST', message: `the workers running this job stopped responding too many times (${message})` };
  }
  if (/started more than allowable limit|attempts/.test(message)) return { code: 'RUNTIME', message };
  return { code: 'RUNTIME', message };
}

const CANCELLED = new Set(['ABORTED', 'SHUTTING_DOWN']);

export function stateOf(bull: BullState | 'unknown', failure?: RecordedFailure): JobState | undefined {
  switch (bull) {
    case 'active': return 'running';
    case 'completed': return 'done';
    case 'failed': return failure && CANCELLED.has(failure.code) ? 'cancelled' : 'failed';
    case 'unknown': return undefined;
    default: return 'queued';
  }
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : undefined);

function isProgress(p: unknown): p is Progress {
  return typeof p === 'object' && p !== null && 'stage' in p && 'done' in p;
}

/** The API's view of a BullMQ job in a given state; undefined when BullMQ no longer knows it. */
export function viewOf(job: ClusterJob, bull: BullState | 'unknown', withResult = true): JobView | undefined {
  const failure = bull === 'failed' ? parseFailure(job.failedReason) : undefined;
  const state = stateOf(bull, failure);
  if (!state) return undefined;
  const started = state !== 'queued' ? iso(job.processedOn) : undefined;
  return {
    id: job.id!,
    task: job.data.task,
    state,
    sync: job.data.sync,
    createdAt: iso(job.timestamp)!,
    ...(started ? { startedAt: started } : {}),
    ...(state !== 'queued' && state !== 'running' && job.finishedOn ? { finishedAt: iso(job.finishedOn) } : {}),
    ...(isProgress(job.progress) ? { progress: job.progress } : {}),
    ...(state === 'done' && withResult && job.returnvalue ? { result: job.returnvalue } : {}),
    ...(failure ? { error: { code: failure.code, message: failure.message } } : {}),
    ...(failure?.stepsAfterCancel !== undefined ? { stepsAfterCancel: failure.stepsAfterCancel } : {}),
    ...(job.attemptsStarted ? { attempts: job.attemptsStarted } : {}),
  };
}
