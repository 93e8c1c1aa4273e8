import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { throwIfAborted } from '../errors.js';

/**
 * A cross-process lock made of an exclusively created file holding {pid, host, id}.
 * The holder touches it every few seconds, so a lock is stale when its owner process is gone
 * (same host) or it has not been touched for `staleMs` (crashed elsewhere, or an empty lock
 * file left behind by huggingface_hub's filelock). Node has no flock, so a download running
 * in Python at the same moment is only kept out by that age rule.
 */
export interface FileLock {
  readonly path: string;
  release(): Promise<void>;
}

export interface LockOptions {
  signal?: AbortSignal;
  /** A lock untouched for this long is taken over (default 60 s; the holder touches it every staleMs/4). */
  staleMs?: number;
  /** How often a waiter looks again (default 100 ms). */
  pollMs?: number;
}

interface LockRecord {
  pid: number;
  host: string;
  id: string;
}

/** Lock files this process holds, to tell our live locks from a dead process that had our pid. */
const heldByThisProcess = new Set<string>();

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

async function readRecord(file: string): Promise<LockRecord | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null) {
      const r = parsed as Partial<LockRecord>;
      if (typeof r.pid === 'number' && typeof r.host === 'string' && typeof r.id === 'string') return r as LockRecord;
    }
  } catch {
    // empty (being written, or a huggingface_hub filelock file) or unreadable: judged by age
  }
  return undefined;
}

async function isStale(file: string, mtimeMs: number, staleMs: number): Promise<boolean> {
  if (Date.now() - mtimeMs > staleMs) return true;
  const record = await readRecord(file);
  if (!record || record.host !== os.hostname()) return false;
  if (record.pid === process.pid) return !heldByThisProcess.has(file);
  return !processIsAlive(record.pid);
}

/** Moves a stale lock aside; if what got moved was a fresh lock taken meanwhile, puts it back. */
async function breakStaleLock(file: string, staleIno: number): Promise<void> {
  const aside = `${file}.stale-${randomUUID()}`;
  try {
    await rename(file, aside);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw err;
  }
  try {
    if ((await stat(aside)).ino !== staleIno) await link(aside, file).catch(() => undefined);
  } finally {
    await rm(aside, { force: true });
  }
}

/** Resolves after `ms`, or at once when the signal aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

export async function acquireLock(file: string, options: LockOptions = {}): Promise<FileLock> {
  const staleMs = options.staleMs ?? 60_000;
  const pollMs = options.pollMs ?? 100;
  await mkdir(path.dirname(file), { recursive: true });
  const record: LockRecord = { pid: process.pid, host: os.hostname(), id: randomUUID() };

  for (;;) {
    throwIfAborted(options.signal);
    try {
      const handle = await open(file, 'wx');
      heldByThisProcess.add(file);
      try {
        await handle.writeFile(JSON.stringify(record));
      } finally {
        await handle.close();
      }
      break;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    let st;
    try {
      st = await stat(file);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue; // released between our open and stat
      throw err;
    }
    if (await isStale(file, st.mtimeMs, staleMs)) {
      await breakStaleLock(file, st.ino);
      continue;
    }
    await sleep(pollMs, options.signal);
  }

  const ours = async (): Promise<boolean> => (await readRecord(file))?.id === record.id;
  const heartbeat = setInterval(() => {
    void ours()
      .then(async (mine) => {
        if (mine) {
          const now = new Date();
          await utimes(file, now, now);
        }
      })
      .catch(() => undefined); // a missed touch only makes the lock look older
  }, Math.max(1000, staleMs / 4));
  heartbeat.unref();

  let released = false;
  return {
    path: file,
    async release(): Promise<void> {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      heldByThisProcess.delete(file);
      if (await ours()) await rm(file, { force: true });
    },
  };
}
