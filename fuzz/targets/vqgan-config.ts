/** The official VQGAN YAML config → readVqganConfigFile, then the parameter list a loader builds from it. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { readVqganConfigFile } from '../../src/vqgan/config.js';
import { vqganParameterSpecs } from '../../src/vqgan/weights.js';
import { mutate } from '../lib/mutate.js';
import type { FuzzRng } from '../lib/rng.js';
import { mutateTree, vqganConfigObject } from '../lib/seeds.js';
import type { FuzzContext, FuzzTarget } from '../target.js';

let file = '';

/** YAML-only hazards: alias fan-out (billion laughs), deep flow nesting, tags, huge scalars. */
function yamlHazard(rng: FuzzRng): string {
  switch (rng.int(5)) {
    case 0: {
      const levels = rng.range(2, 12);
      const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
      for (let k = 1; k < levels; k++) lines.push(`a${k}: &a${k} [${Array.from({ length: 10 }, () => `*a${k - 1}`).join(', ')}]`);
      lines.push(`model: {params: {ddconfig: *a${levels - 1}}}`);
      return lines.join('\n');
    }
    case 1: {
      const d = rng.size(40_000); // around the 64 KiB cap
      return `model: ${'['.repeat(d)}1${']'.repeat(d)}`;
    }
    case 2: return `model: !!binary ${'QUFB'.repeat(rng.size(10_000))}\n`;
    case 3: return `model:\n  params:\n    embed_dim: ${'9'.repeat(rng.size(5000) + 1)}\n    n_embed: 1e999\n`;
    default: return `${'- '.repeat(rng.size(40_000))}x\n`;
  }
}

export const target: FuzzTarget = {
  name: 'vqgan-config',
  description: 'VQGAN config YAML bytes → readVqganConfigFile and vqganParameterSpecs',
  async setup(ctx: FuzzContext) {
    file = path.join(ctx.tmpDir, 'config.yaml');
  },
  input(rng) {
    const mode = rng.next();
    if (mode < 0.1) return new TextEncoder().encode(yamlHazard(rng));
    let doc: unknown = vqganConfigObject(rng);
    if (mode < 0.2) return new TextEncoder().encode(stringify(doc));
    for (let k = 1 + rng.int(3); k > 0; k--) doc = mutateTree(rng, doc);
    const text = new TextEncoder().encode(rng.chance(0.3) ? JSON.stringify(doc) : stringify(doc));
    return mode < 0.7 ? text : mutate(rng, text);
  },
  async run(input) {
    await writeFile(file, input);
    vqganParameterSpecs(await readVqganConfigFile(file));
  },
};
