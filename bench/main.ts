/**
 * `npm run bench [-- name...]`: runs each benchmark in a fresh process (so peak RSS is its own),
 * prints a table and writes bench/results/<name>.json plus bench/results/all.json.
 * Benchmarks are not tests: they assert nothing and take minutes.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ALL = ['tokenizer', 'checkpoint-memory', 'vqgan', 'model', 'model-int8', 'model-q4', 'model-ratio', 'quality', 'startup', 'dream', 'dream-int8', 'dream-q4', 'train', 'server', 'server-pixels', 'upscale', 'browser', 'kernels', 'precision', 'cluster', 'eval'];
/** Benchmarks that are another one with arguments. */
const ALIASES: Record<string, [string, string[]]> = {
  'model-int8': ['model', ['--precision', 'int8']],
  'model-q4': ['model', ['--precision', 'q4']],
  'dream-int8': ['dream', ['--precision', 'int8']],
  'dream-q4': ['dream', ['--precision', 'q4']],
};

function runOne(name: string): Record<string, unknown> {
  const [script, extra] = ALIASES[name] ?? [name, []];
  const file = path.join(HERE, `${script}.ts`);
  if (!existsSync(file)) return { error: `no benchmark ${name}` };
  // --expose-gc: benchmarks that report resident memory collect garbage before reading it
  const args = ['--expose-gc', '--import', 'tsx', '--import', path.join(HERE, '..', 'test', 'setup.ts'), file, ...extra];
  const out = execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  const start = out.lastIndexOf('\n{') >= 0 && !out.trimStart().startsWith('{') ? out.lastIndexOf('\n{') + 1 : out.indexOf('{');
  return JSON.parse(out.slice(start)) as Record<string, unknown>;
}

const names = process.argv.slice(2).length ? process.argv.slice(2) : ALL;
const unknown = names.filter((n) => !ALL.includes(n));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${ALL.join(', ')}`);
  process.exit(2);
}
const dir = path.join(HERE, 'results');
await fsp.mkdir(dir, { recursive: true });
const results: Record<string, unknown> = { date: new Date().toISOString(), node: process.version };
for (const name of names) {
  console.error(`— ${name}`);
  const t0 = performance.now();
  let r: Record<string, unknown>;
  try {
    r = runOne(name);
  } catch (e) {
    r = { error: (e as Error).message.split('\n')[0] };
  }
  // quality.json keeps the shape { <precision>: {…} } that readers of it expect
  if (name !== 'quality') r.wall_s = (performance.now() - t0) / 1000;
  results[name] = r;
  await fsp.writeFile(path.join(dir, `${name}.json`), `${JSON.stringify(r, null, 1)}\n`);
  for (const [k, v] of Object.entries(r)) console.log(`${name.padEnd(18)} ${k.padEnd(34)} ${typeof v === 'number' ? Number(v.toPrecision(4)) : JSON.stringify(v)}`);
}
await fsp.writeFile(path.join(dir, 'all.json'), `${JSON.stringify(results, null, 1)}\n`);
