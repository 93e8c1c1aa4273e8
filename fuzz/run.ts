/**
 * npm run fuzz -- [target ...] [--count N] [--seed S] [--time-limit MS] [--memory-limit MB]
 *
 * Feeds every target (default: all) N seeded inputs (default 1000), prints one line per target
 * (inputs, outcomes by error code, slowest input, largest memory growth, findings) and writes
 * the whole report to fuzz/results/fuzz-<seed>-<time>.json, with the slowest, largest and every
 * finding's input saved beside it for replay (`--replay FILE --target T` runs one input again).
 * Exit code 1 when anything was found.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RudolphError } from '../src/errors.js';
import '../src/runtime/node/index.js'; // --replay runs a target in this thread
import { fuzzTarget, type TargetReport } from './harness.js';
import { peakMemory } from './lib/memory.js';
import { loadTarget, TARGET_NAMES } from './targets/index.js';

const ROOT = path.dirname(fileURLToPath(import.meta.url));

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    count: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    'time-limit': { type: 'string', default: '2000' },
    'memory-limit': { type: 'string', default: '256' },
    replay: { type: 'string' },
    target: { type: 'string' },
  },
});

function positiveInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

export function formatReport(r: TargetReport): string {
  const outcomes = Object.entries(r.outcomes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  const slow = r.slowest ? `cpu ${r.slowest.cpuMs} ms, wall ${r.slowest.ms} ms (#${r.slowest.i}, ${r.slowest.outcome})` : '-';
  const mem = r.largestMemory ? `${r.largestMemory.growthMB} MB (#${r.largestMemory.i}, ${r.largestMemory.outcome})` : '-';
  return `${r.target.padEnd(15)} ${String(r.inputs).padStart(6)} inputs in ${String(r.seconds).padStart(6)} s | slowest ${slow} | largest growth ${mem} | findings ${r.findingCount}\n${' '.repeat(16)}${outcomes}`;
}

async function replay(file: string, name: string): Promise<void> {
  const target = await loadTarget(name);
  const { mkdtemp } = await import('node:fs/promises');
  const os = await import('node:os');
  await target.setup({ tmpDir: await mkdtemp(path.join(os.tmpdir(), 'rudolph-fuzz-replay-')) });
  const memory = peakMemory();
  const t0 = performance.now();
  try {
    await target.run(readFileSync(file));
    console.log('ok');
  } catch (e) {
    console.log(e instanceof RudolphError ? `typed ${e.code}: ${e.message}` : `UNTYPED: ${e instanceof Error ? e.stack : String(e)}`);
  }
  console.log(`${(performance.now() - t0).toFixed(1)} ms, peak growth ${memory.growthMB().toFixed(1)} MB`);
}

async function main(): Promise<number> {
  if (values.replay) {
    if (!values.target) throw new Error('--replay needs --target');
    await replay(values.replay, values.target);
    return 0;
  }
  const targets = positionals.length ? positionals : TARGET_NAMES;
  for (const t of targets) if (!TARGET_NAMES.includes(t)) throw new Error(`unknown target "${t}" (known: ${TARGET_NAMES.join(', ')})`);
  const count = positiveInt('count', values.count);
  const seed = positiveInt('seed', values.seed);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.join(ROOT, 'results');
  const saveDir = path.join(resultsDir, `inputs-${seed}-${stamp}`);
  mkdirSync(resultsDir, { recursive: true });
  const reports: TargetReport[] = [];
  for (const target of targets) {
    const report = await fuzzTarget(target, {
      count, seed, saveDir,
      timeLimitMs: positiveInt('time-limit', values['time-limit']),
      memoryLimitMB: positiveInt('memory-limit', values['memory-limit']),
      onProgress: (done, total) => {
        if (process.stderr.isTTY && done % 100 === 0) process.stderr.write(`\r${target}: ${done}/${total}`);
      },
    });
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    reports.push(report);
    console.log(formatReport(report));
    for (const f of report.findings.slice(0, 5)) console.log(`  FINDING ${f.kind} #${f.i} ${f.outcome} ${f.ms} ms ${f.growthMB} MB: ${(f.detail ?? '').split('\n')[0]}${f.file ? ` (${f.file})` : ''}`);
  }
  const out = path.join(resultsDir, `fuzz-${seed}-${stamp}.json`);
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, count, seed, reports }, null, 1));
  console.log(`report: ${out}`);
  return reports.some((r) => r.findingCount > 0) ? 1 : 0;
}

process.exitCode = await main();
