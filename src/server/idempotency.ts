/**
 * Idempotency-Key support shared by both backends: a key is scoped by the client (API key or
 * IP), and a retried request must be the same request (same task, input and kind) to get the
 * same job back; the same key with another request is a 422.
 */
import { createHash } from 'node:crypto';
import type { ApiInput, TaskName } from './schemas.js';

/** Largest Idempotency-Key accepted (characters). */
export const MAX_IDEMPOTENCY_KEY = 200;

/** A digest of what a request asks for. */
export function requestHash(task: TaskName, input: ApiInput, sync: boolean): string {
  return createHash('sha256').update(JSON.stringify([task, sync, input])).digest('hex');
}

/** A job id derived from the client and its key (the cluster front uses it as the BullMQ job id). */
export function keyedJobId(client: string, key: string): string {
  return `idem-${createHash('sha256').update(`${client}\0${key}`).digest('hex').slice(0, 40)}`;
}
