/**
 * Runs one target's inputs in a worker thread and reports each: its outcome, time and peak
 * memory. The parent (harness.ts) watches the clock and the process size and ends a worker
 * that hangs or balloons, so a finding never takes the fuzzer down with it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { RudolphError } from '../src/errors.js';
import '../src/runtime/node/index.js'; // the readers reach files through the registered runtime
import { FuzzRng } from './lib/rng.js';
import { peakMemory } from './lib/memory.js';
import { loadTarget } from './targets/index.js';

export interface WorkerJob {
  target: string;
  seed: number;
  from: number;
  to: number;
}

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'start'; i: number; input: Uint8Array }
  | { type: 'end'; i: number; outcome: string; typed: boolean; detail: string; ms: number; cpuMs: number; growthMB: number }
  | { type: 'done' };

const job = workerData as WorkerJob;
const port = parentPort!;
const target = await loadTarget(job.target);
const tmpDir = await mkdtemp(path.join(os.tmpdir(), `rudolph-fuzz-${path.basename(job.target).replace(/\W+/g, "-")}-`));
try {
  await target.setup({ tmpDir });
  port.postMessage({ type: 'ready' } satisfies WorkerMessage);
  for (let i = job.from; i < job.to; i++) {
    const input = await target.input(new FuzzRng(job.seed, i), i);
    port.postMessage({ type: 'start', i, input } satisfies WorkerMessage);
    const memory = peakMemory();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let outcome = 'ok';
    let typed = true;
    let detail = '';
    try {
      await target.run(input);
    } catch (e) {
      if (e instanceof RudolphError) {
        outcome = e.code;
        detail = e.message.slice(0, 300);
      } else {
        typed = false;
        const err = e instanceof Error ? e : new Error(String(e));
        outcome = `UNTYPED ${err.name}`;
        detail = `${err.message.slice(0, 300)}\n${(err.stack ?? '').split('\n').slice(1, 6).join('\n')}`;
      }
    }
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    port.postMessage({ type: 'end', i, outcome, typed, detail, ms, cpuMs, growthMB: memory.growthMB() } satisfies WorkerMessage);
  }
  await target.teardown?.();
  port.postMessage({ type: 'done' } satisfies WorkerMessage);
} finally {
  await rm(tmpDir, { recursive: true, force: true });
}
