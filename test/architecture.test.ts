/**
 * The layering ARCHITECTURE.md describes, checked on the sources: every relative import goes to
 * the same floor or a lower one, and no module imports itself back through others.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from './helpers.js';

const SRC = path.join(REPO_ROOT, 'src');

/** Floors from the bottom; a module belongs to the longest prefix that names it. Keep in step with ARCHITECTURE.md. */
export const FLOORS: string[][] = [
  ['errors.ts', 'tensor.ts', 'util/'],
  ['runtime/types.ts', 'runtime/current.ts', 'image/', 'io/', 'onnx/', 'tokenizer/'],
  ['model/', 'vqgan/', 'upscale/'],
  ['generation/'],
  ['tasks/'],
  ['presets.ts', 'load-options.ts', 'rudolph.ts'],
  ['hub/'],
  ['pretrained/', 'runtime/node/', 'runtime/web/'],
  ['train/', 'eval/'],
  ['server/', 'cli/', 'index.ts', 'web.ts'],
];

function floorOf(file: string): number {
  let best = -1, bestLen = -1;
  FLOORS.forEach((prefixes, i) => {
    for (const p of prefixes) if ((file === p || file.startsWith(p)) && p.length > bestLen) { best = i; bestLen = p.length; }
  });
  return best;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

const IMPORT = /^(?:import|export)\s[^;]*?from\s+'(\.[^']+)';|^import\s+'(\.[^']+)';/gm;

function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const rel = path.relative(SRC, file).split(path.sep).join('/');
    const targets: string[] = [];
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const spec = (m[1] ?? m[2]).replace(/\.js$/, '.ts');
      targets.push(path.relative(SRC, path.resolve(path.dirname(file), spec)).split(path.sep).join('/'));
    }
    graph.set(rel, targets);
  }
  return graph;
}

describe('architecture', () => {
  const graph = importGraph();

  it('every module has a floor and imports only from its floor or below', () => {
    const problems: string[] = [];
    for (const [from, targets] of graph) {
      const f = floorOf(from);
      if (f < 0) { problems.push(`${from} belongs to no floor`); continue; }
      for (const to of targets) if (floorOf(to) > f) problems.push(`${from} (floor ${f}) imports ${to} (floor ${floorOf(to)})`);
    }
    assert.deepEqual(problems, []);
  });

  it('has no import cycles', () => {
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (u: string, stack: string[]) => {
      state.set(u, 'open');
      for (const v of graph.get(u) ?? []) {
        if (state.get(v) === 'open') cycles.push([...stack.slice(stack.indexOf(v)), u, v].join(' → '));
        else if (!state.has(v)) visit(v, [...stack, u]);
      }
      state.set(u, 'done');
    };
    for (const u of graph.keys()) if (!state.has(u)) visit(u, []);
    assert.deepEqual(cycles, []);
  });
});
