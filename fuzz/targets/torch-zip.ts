/** torch zip checkpoints (torch.save since 1.6) through openCheckpoint: zip directory, data.pkl, storages, views. */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import yauzl from 'yauzl';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { saveTorchCheckpoint } from '../../src/io/torch-writer.js';
import { BYTES_PER_ELEMENT, numel } from '../../src/tensor.js';
import { mutate, mutateOnce } from '../lib/mutate.js';
import { randomPickle } from '../lib/pickle-gen.js';
import { FuzzRng } from '../lib/rng.js';
import { randomStateDict } from '../lib/seeds.js';
import { rawZip, zeroBomb, type RawZipEntry } from '../lib/zip.js';
import { deflateRawSync } from 'node:zlib';
import type { FuzzContext, FuzzTarget } from '../target.js';

/** Tensors a loader would read after its config check; larger declarations are only listed. */
const READ_BUDGET = 32 * 2 ** 20;

interface Seed { file: Uint8Array; entries: Array<{ name: string; data: Uint8Array }> }

let seeds: Seed[] = [];
let bombs: Array<{ stored: Buffer; crc: number; size: number }> = [];
let file = '';

async function entriesOf(bytes: Uint8Array): Promise<Seed['entries']> {
  const zip = await yauzl.fromBufferPromise(Buffer.from(bytes), { lazyEntries: true });
  const out: Seed['entries'] = [];
  for await (const entry of zip.eachEntry()) {
    const chunks: Buffer[] = [];
    for await (const c of (await zip.openReadStreamPromise(entry)) as AsyncIterable<Buffer>) chunks.push(c);
    out.push({ name: entry.fileName, data: Buffer.concat(chunks) });
  }
  return out;
}

export const target: FuzzTarget = {
  name: 'torch-zip',
  description: 'torch zip checkpoint files → openCheckpoint, info and read of every tensor',
  async setup(ctx: FuzzContext) {
    file = path.join(ctx.tmpDir, 'input.pt');
    for (let s = 0; s < 6; s++) {
      const seedFile = path.join(ctx.tmpDir, `seed${s}.pt`);
      await saveTorchCheckpoint(seedFile, randomStateDict(new FuzzRng(1000 + s, 0)));
      const bytes = await readFile(seedFile);
      seeds.push({ file: bytes, entries: await entriesOf(bytes) });
    }
    bombs = [1, 16, 64].map((mb) => ({ ...zeroBomb(mb * 2 ** 20), size: mb * 2 ** 20 }));
  },
  input(rng) {
    const seed = rng.pick(seeds);
    const mode = rng.next();
    if (mode < 0.3) return mutate(rng, seed.file, rng.pick(seeds).file);
    // re-zipped: entries mutated, compressed, forged or replaced
    const entries: RawZipEntry[] = seed.entries.map((e) => ({ name: e.name, stored: e.data }));
    const pkl = entries.find((e) => e.name.endsWith('/data.pkl'));
    if (pkl) {
      if (mode < 0.55) pkl.stored = mutateOnce(rng, pkl.stored);
      else if (mode < 0.7) pkl.stored = mutate(rng, pkl.stored);
      else if (mode < 0.8) pkl.stored = randomPickle(rng);
    }
    for (const e of entries) {
      if (rng.chance(0.15)) { // deflate it, the size recorded honestly or not
        const size = e.stored.length;
        e.stored = deflateRawSync(e.stored);
        e.method = 8;
        e.size = size;
      }
      if (rng.chance(0.02)) e.size = rng.interestingInt() >>> 0;
      if (rng.chance(0.02)) e.method = rng.pick([1, 9, 12, 99]);
    }
    if (rng.chance(0.08)) { // a zero bomb as data.pkl or as a storage
      const bomb = rng.pick(bombs);
      const victim = rng.chance(0.5) && pkl ? pkl : rng.pick(entries);
      victim.stored = bomb.stored;
      victim.method = 8;
      victim.size = rng.chance(0.7) ? bomb.size : rng.interestingInt() >>> 0;
      victim.crc = bomb.crc;
    }
    if (rng.chance(0.1)) entries.push({ name: rng.pick(['archive/data.pkl', '../evil', 'archive/data/99', 'x/data.pkl', 'archive/byteorder']), stored: rng.bytes(rng.size(1000)) });
    if (rng.chance(0.1)) entries.sort(() => rng.next() - 0.5);
    return rawZip(entries);
  },
  async run(input) {
    await writeFile(file, input);
    const reader = await openCheckpoint(file);
    try {
      let budget = READ_BUDGET;
      let total = 0;
      for (const key of reader.keys()) {
        const { dtype, shape } = reader.info(key);
        const bytes = numel(shape) * BYTES_PER_ELEMENT[dtype];
        total += bytes;
        if (bytes > budget) continue;
        budget -= bytes;
        await reader.read(key, { toFloat32: true });
      }
      if (total <= READ_BUDGET) for await (const _ of reader.iterate()) { /* streamed in file order */ }
    } finally {
      await reader.close();
    }
  },
};
