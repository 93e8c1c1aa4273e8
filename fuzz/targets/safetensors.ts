/** safetensors files through openCheckpoint: length prefix, JSON header, data section, every tensor read. */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { saveSafetensors } from '../../src/io/safetensors-writer.js';
import { mutate, mutateOnce } from '../lib/mutate.js';
import { FuzzRng } from '../lib/rng.js';
import { mutateTree, randomStateDict } from '../lib/seeds.js';
import type { FuzzContext, FuzzTarget } from '../target.js';

let seeds: Uint8Array[] = [];
let file = '';

function split(bytes: Uint8Array): { header: unknown; data: Uint8Array } {
  const len = Number(Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64LE(0));
  return { header: JSON.parse(Buffer.from(bytes.subarray(8, 8 + len)).toString('utf8')), data: bytes.subarray(8 + len) };
}

function join(header: Uint8Array, data: Uint8Array, declared = header.length): Uint8Array {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt.asUintN(64, BigInt(declared)));
  return Buffer.concat([len, header, data]);
}

/** Arbitrary JSON, nested or wide now and then (the shapes JSON.parse is slow on), at most ~`budget` values. */
function randomJson(rng: FuzzRng, budget = { left: rng.size(20_000) + 1 }, depth = 0): unknown {
  const r = rng.next();
  budget.left--;
  if (budget.left <= 0 || depth > 40 || r < 0.3) return rng.pick<unknown>([rng.interestingInt(), 'F32', 'x', null, true, 1.5, -1, '']);
  if (r < 0.6) {
    const out: unknown[] = [];
    for (let n = rng.size(depth === 0 ? 2000 : 50); n > 0 && budget.left > 0; n--) out.push(randomJson(rng, budget, depth + 1));
    return out;
  }
  const o: Record<string, unknown> = {};
  for (let k = rng.size(20); k > 0 && budget.left > 0; k--) o[rng.pick(['dtype', 'shape', 'data_offsets', '__metadata__', `t${k}`])] = randomJson(rng, budget, depth + 1);
  return o;
}

export const target: FuzzTarget = {
  name: 'safetensors',
  description: 'safetensors files → openCheckpoint, info and read of every tensor',
  async setup(ctx: FuzzContext) {
    file = path.join(ctx.tmpDir, 'input.safetensors');
    for (let s = 0; s < 6; s++) {
      const seedFile = path.join(ctx.tmpDir, `seed${s}.safetensors`);
      await saveSafetensors(seedFile, randomStateDict(new FuzzRng(2000 + s, 0)), s % 2 ? { metadata: { format: 'pt', note: 'seed' } } : {});
      seeds.push(await readFile(seedFile));
    }
  },
  input(rng) {
    const seed = rng.pick(seeds);
    const mode = rng.next();
    if (mode < 0.3) return mutate(rng, seed, rng.pick(seeds));
    const { header, data } = split(seed);
    if (mode < 0.5) { // the header's JSON mutated as bytes, length kept honest
      const h = mutateOnce(rng, new TextEncoder().encode(JSON.stringify(header)));
      return join(h, data);
    }
    if (mode < 0.75) { // one value of the header replaced by something hostile
      const h = new TextEncoder().encode(JSON.stringify(mutateTree(rng, header)));
      return join(h, rng.chance(0.8) ? data : mutateOnce(rng, data));
    }
    if (mode < 0.9) { // arbitrary JSON
      const h = new TextEncoder().encode(JSON.stringify(randomJson(rng)) ?? 'null');
      return join(h, rng.bytes(rng.size(256)));
    }
    // a lying length prefix
    const h = new TextEncoder().encode(JSON.stringify(header));
    return join(h, data, rng.chance(0.5) ? rng.interestingInt() : h.length + rng.range(-8, 8));
  },
  async run(input) {
    await writeFile(file, input);
    const reader = await openCheckpoint(file);
    try {
      for (const key of reader.keys()) reader.info(key);
      for await (const _ of reader.iterate({ toFloat32: true })) { /* every tensor */ }
    } finally {
      await reader.close();
    }
  },
};
