/**
 * Drives one target's worker over inputs [0, count): counts outcomes, keeps the slowest input and
 * the one with the largest memory growth, and records findings (an untyped error, more than
 * `timeLimitMs`, more than `memoryLimitMB`, a hang or a dead worker). A worker that hangs
 * (`hangMs`) or swells past `killMB` is terminated and a fresh one continues after that input.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { rssMB } from './lib/memory.js';
import type { WorkerJob, WorkerMessage } from './worker.js';

export interface FuzzOptions {
  count: number;
  seed: number;
  /**
   * An input must end within this (default 2000 ms) of CPU time, and within 5× it of wall time
   * (waits that burn no CPU): CPU time keeps the verdict steady on a shared, busy machine.
   */
  timeLimitMs?: number;
  /** ... and grow the process by at most this (default 256 MB). */
  memoryLimitMB?: number;
  /** A worker stuck this long on one input is ended (default 10 s). */
  hangMs?: number;
  /** A worker whose process grows this much is ended (default 3 GB). */
  killMB?: number;
  /** Where to save the inputs worth looking at (slowest, largest, findings); none when absent. */
  saveDir?: string;
  onProgress?: (done: number, count: number) => void;
}

export interface InputRecord {
  i: number;
  outcome: string;
  /** Wall-clock time. */
  ms: number;
  /** CPU time of the process over the input (robust to a busy machine; the parent thread idles meanwhile). */
  cpuMs: number;
  growthMB: number;
  bytes: number;
  detail?: string;
  /** The saved input, when saveDir was given. */
  file?: string;
}

export interface Finding extends InputRecord {
  kind: 'untyped' | 'slow' | 'memory' | 'hang' | 'crash';
}

/** `slowest` is by CPU time (see timeLimitMs); hangs and crashes are findings, not records. */
export interface TargetReport {
  target: string;
  seed: number;
  inputs: number;
  outcomes: Record<string, number>;
  slowest: InputRecord | null;
  largestMemory: InputRecord | null;
  findings: Finding[];
  /** How many findings there were in all (`findings` keeps the first 50). */
  findingCount: number;
  workerRestarts: number;
  seconds: number;
}

const MAX_FINDINGS_KEPT = 50;

/** Worker threads do not inherit the tsx loader on Node 20: the worker registers it, then loads worker.ts. */
const WORKER_BOOT = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./worker.ts', import.meta.url).href)}); });`;

export async function fuzzTarget(target: string, o: FuzzOptions): Promise<TargetReport> {
  const timeLimitMs = o.timeLimitMs ?? 2000;
  const memoryLimitMB = o.memoryLimitMB ?? 256;
  const hangMs = o.hangMs ?? 10_000;
  const killMB = o.killMB ?? 3072;
  const report: TargetReport = {
    target, seed: o.seed, inputs: 0, outcomes: {}, slowest: null, largestMemory: null, findings: [], findingCount: 0, workerRestarts: 0, seconds: 0,
  };
  const started = performance.now();
  const save = (i: number, input: Uint8Array | undefined, why: string): string | undefined => {
    if (!o.saveDir || !input) return undefined;
    mkdirSync(o.saveDir, { recursive: true });
    const file = path.join(o.saveDir, `${path.basename(target).replace(/\.[jt]s$/, '')}-${o.seed}-${i}-${why}.bin`);
    writeFileSync(file, input);
    return file;
  };
  const finding = (f: Finding, input: Uint8Array | undefined): void => {
    report.findingCount++;
    if (report.findings.length < MAX_FINDINGS_KEPT) report.findings.push({ ...f, file: save(f.i, input, f.kind) });
  };

  let next = 0;
  while (next < o.count) {
    const from = next;
    const stop = await new Promise<{ resumeAt: number }>((resolve, reject) => {
      const job: WorkerJob = { target, seed: o.seed, from, to: o.count };
      const worker = new Worker(WORKER_BOOT, { eval: true, workerData: job });
      let current: { i: number; input: Uint8Array; t0: number } | null = null;
      let baseline = rssMB();
      let settled = false;
      const finish = (resumeAt: number): void => {
        if (settled) return;
        settled = true;
        clearInterval(watchdog);
        void worker.terminate();
        resolve({ resumeAt });
      };
      const kill = (kind: 'hang' | 'memory', detail: string): void => {
        if (!current || settled) return;
        const { i, input } = current;
        report.inputs++;
        report.outcomes[kind.toUpperCase()] = (report.outcomes[kind.toUpperCase()] ?? 0) + 1;
        finding({ i, kind, outcome: kind.toUpperCase(), ms: round(performance.now() - current.t0), cpuMs: NaN, growthMB: round(rssMB() - baseline), bytes: input.length, detail }, input);
        finish(i + 1);
      };
      const watchdog = setInterval(() => {
        if (!current) return;
        if (performance.now() - current.t0 > hangMs) kill('hang', `still running after ${hangMs} ms: worker ended`);
        else if (rssMB() - baseline > killMB) kill('memory', `process grew by more than ${killMB} MB: worker ended`);
      }, 50);
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') baseline = rssMB();
        else if (m.type === 'start') current = { i: m.i, input: m.input, t0: performance.now() };
        else if (m.type === 'end') {
          const input = current?.input;
          current = null;
          next = m.i + 1;
          report.inputs++;
          report.outcomes[m.outcome] = (report.outcomes[m.outcome] ?? 0) + 1;
          const rec: InputRecord = { i: m.i, outcome: m.outcome, ms: round(m.ms), cpuMs: round(m.cpuMs), growthMB: round(m.growthMB), bytes: input?.length ?? 0 };
          // every kind that applies is its own finding
          if (!m.typed) finding({ ...rec, kind: 'untyped', detail: m.detail }, input);
          if (m.cpuMs > timeLimitMs || m.ms > 5 * timeLimitMs) finding({ ...rec, kind: 'slow', detail: m.detail }, input);
          if (m.growthMB > memoryLimitMB) finding({ ...rec, kind: 'memory', detail: m.detail }, input);
          if (!report.slowest || m.cpuMs > report.slowest.cpuMs) report.slowest = { ...rec, detail: m.detail.slice(0, 160), file: save(m.i, input, 'slowest') };
          if (!report.largestMemory || m.growthMB > report.largestMemory.growthMB) report.largestMemory = { ...rec, detail: m.detail.slice(0, 160), file: save(m.i, input, 'largest') };
          o.onProgress?.(report.inputs, o.count);
        } else if (m.type === 'done') finish(o.count);
      });
      worker.on('error', (e: Error) => {
        if (settled) return;
        if (!current) { settled = true; clearInterval(watchdog); reject(e); return; }
        const { i, input } = current;
        report.inputs++;
        report.outcomes.CRASH = (report.outcomes.CRASH ?? 0) + 1;
        finding({ i, kind: 'crash', outcome: 'CRASH', ms: round(performance.now() - current.t0), cpuMs: NaN, growthMB: round(rssMB() - baseline), bytes: input.length, detail: `${e.name}: ${e.message}` }, input);
        finish(i + 1);
      });
      worker.on('exit', (code) => {
        if (settled) return;
        if (current) {
          const { i, input } = current;
          report.inputs++;
          report.outcomes.CRASH = (report.outcomes.CRASH ?? 0) + 1;
          finding({ i, kind: 'crash', outcome: 'CRASH', ms: 0, cpuMs: NaN, growthMB: 0, bytes: input.length, detail: `worker exited with code ${code}` }, input);
          finish(i + 1);
        } else {
          finish(next);
        }
      });
    });
    if (stop.resumeAt <= from) throw new Error(`fuzz target ${target}: the worker ended before its first input`);
    if (stop.resumeAt < o.count) report.workerRestarts++;
    next = stop.resumeAt;
  }
  report.seconds = round((performance.now() - started) / 1000);
  return report;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
