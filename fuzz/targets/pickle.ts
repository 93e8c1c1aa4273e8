/** The pickle VM on its own: torch-like state_dict pickles, mutated, and random opcode programs. */
import { PickleTuple, unpickle } from '../../src/io/pickle.js';
import { PickleWriter } from '../../src/io/pickle-writer.js';
import { mutate } from '../lib/mutate.js';
import { randomPickle } from '../lib/pickle-gen.js';
import type { FuzzRng } from '../lib/rng.js';
import type { FuzzTarget } from '../target.js';

let seeds: Uint8Array[] = [];

/** A state_dict pickle as torch.save writes it: OrderedDict of _rebuild_tensor_v2 calls over persistent storages. */
function stateDictPickle(tensors: number): Uint8Array {
  const w = new PickleWriter();
  w.global('collections', 'OrderedDict').emptyTuple().reduce();
  w.dictItems(tensors, (k) => {
    w.string(`layer.${k}.weight`).global('torch._utils', '_rebuild_tensor_v2').mark();
    w.mark().string('storage').global('torch', 'FloatStorage').string(String(k)).string('cpu').int(6).tuple(5).binpersid();
    w.int(0).intTuple([2, 3]).intTuple([3, 1]).bool(false);
    w.global('collections', 'OrderedDict').emptyTuple().reduce();
    w.tuple(6).reduce();
  });
  return w.finish();
}

export const target: FuzzTarget = {
  name: 'pickle',
  description: 'pickle bytes → unpickle (built-in allow-list, persistent ids resolved to tuples)',
  async setup() {
    seeds = [1, 3, 12].map(stateDictPickle);
  },
  input(rng: FuzzRng) {
    return rng.chance(0.5) ? mutate(rng, rng.pick(seeds), rng.pick(seeds)) : randomPickle(rng);
  },
  async run(input) {
    unpickle(input, { source: 'fuzz.pkl', persistentLoad: (pid) => new PickleTuple([pid]) });
  },
};
