/** YouTokenToMe bpe.model files → YttmTokenizer.fromBuffer, then encode / decode with it. */
import { YttmTokenizer } from '../../src/tokenizer/yttm.js';
import { mutate } from '../lib/mutate.js';
import type { FuzzRng } from '../lib/rng.js';
import { bpeModelText } from '../lib/seeds.js';
import type { FuzzTarget } from '../target.js';

const TEXTS = ['', 'привет мир', 'рыжий кот на подоконнике, 2024!', 'hello world', '😀 \ud800 lone', 'а'.repeat(3000), '▁▁▁  \t\n', 'abc абв 123'];

/** Line-level edits of a model text: a number changed, a line dropped, doubled, swapped or added. */
function mutateLines(rng: FuzzRng, text: string): string {
  const lines = text.split('\n');
  for (let k = 1 + rng.int(3); k > 0; k--) {
    const at = rng.int(lines.length);
    const r = rng.next();
    if (r < 0.4) {
      const nums = lines[at].split(' ');
      nums[rng.int(nums.length)] = String(rng.chance(0.5) ? rng.interestingInt() : Number(nums[0]) + rng.range(-2, 2));
      lines[at] = nums.join(' ');
    } else if (r < 0.55) lines.splice(at, 1);
    else if (r < 0.7) lines.splice(at, 0, lines[at]);
    else if (r < 0.85) {
      const other = rng.int(lines.length);
      [lines[at], lines[other]] = [lines[other], lines[at]];
    } else lines.splice(at, 0, `${rng.interestingInt()} ${rng.interestingInt()} ${rng.interestingInt()}`);
  }
  return lines.join('\n');
}

export const target: FuzzTarget = {
  name: 'bpe-model',
  description: 'bpe.model bytes → YttmTokenizer.fromBuffer, encode (ids, subwords, dropout) and decode',
  async setup() { /* models are generated per input */ },
  input(rng) {
    const mode = rng.next();
    const text = bpeModelText(rng, mode > 0.95 ? { rules: rng.size(30_000), chain: true } : {});
    if (mode < 0.2 || mode > 0.95) return new TextEncoder().encode(text);
    if (mode < 0.6) return new TextEncoder().encode(mutateLines(rng, text));
    return mutate(rng, new TextEncoder().encode(text));
  },
  async run(input) {
    const tok = YttmTokenizer.fromBuffer(input, 'fuzz.model');
    for (const t of TEXTS) {
      const ids = tok.encode(t);
      tok.encode(t, { output: 'subword', dropoutProb: 0.3, seed: 1 });
      tok.decode(ids);
    }
    tok.vocab();
  },
};
