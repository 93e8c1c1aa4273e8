/** A model folder's config.json → readConfigFile, then what loading derives from it first (parameter list, masks). */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readConfigFile } from '../../src/pretrained/model-dir.js';
import { fullMask } from '../../src/model/masks.js';
import { parameterSpecs } from '../../src/model/weights.js';
import { mutate } from '../lib/mutate.js';
import { mutateTree, rudolphConfigJson } from '../lib/seeds.js';
import type { FuzzContext, FuzzTarget } from '../target.js';

let file = '';

export const target: FuzzTarget = {
  name: 'rudolph-config',
  description: 'config.json bytes → readConfigFile, parameterSpecs and the attention masks of a valid config',
  async setup(ctx: FuzzContext) {
    file = path.join(ctx.tmpDir, 'config.json');
  },
  input(rng) {
    let json: unknown = rudolphConfigJson(rng);
    const mode = rng.next();
    if (mode < 0.15) return new TextEncoder().encode(JSON.stringify(json));
    for (let k = 1 + rng.int(3); k > 0; k--) json = mutateTree(rng, json);
    const text = new TextEncoder().encode(JSON.stringify(json, null, rng.chance(0.5) ? 1 : 0));
    return mode < 0.75 ? text : mutate(rng, text);
  },
  async run(input) {
    await writeFile(file, input);
    const cfg = await readConfigFile(file);
    parameterSpecs(cfg);
    fullMask('row', cfg);
  },
};
