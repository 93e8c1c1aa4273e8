/**
 * Live workers of a queue: each worker writes a record (its model's description, concurrency,
 * host, pid) into a Redis hash and refreshes it every few seconds; a record not refreshed
 * within WORKER_TTL_MS is ignored (a worker killed without a goodbye drops out by itself).
 */
import type { Redis } from 'ioredis';
import type { RudolphInfo } from '../../rudolph.js';

export const HEARTBEAT_MS = 2000;
export const WORKER_TTL_MS = 4 * HEARTBEAT_MS;

export interface WorkerRecord {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  batching: boolean;
  startedAt: string;
  /** last heartbeat (ms since the epoch) */
  seen: number;
  info: RudolphInfo;
}

export async function liveWorkers(client: Redis, key: string): Promise<WorkerRecord[]> {
  const all = await client.hgetall(key);
  const now = Date.now();
  const live: WorkerRecord[] = [];
  const stale: string[] = [];
  for (const [id, json] of Object.entries(all)) {
    const r = JSON.parse(json) as WorkerRecord;
    if (now - r.seen <= WORKER_TTL_MS) live.push(r);
    else if (now - r.seen > 10 * WORKER_TTL_MS) stale.push(id);
  }
  if (stale.length) await client.hdel(key, ...stale);
  return live;
}

export async function heartbeat(client: Redis, key: string, record: Omit<WorkerRecord, 'seen'>): Promise<void> {
  await client.hset(key, record.id, JSON.stringify({ ...record, seen: Date.now() }));
}
