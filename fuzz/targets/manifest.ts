/**
 * Fine-tuning JSONL manifests → loadDataset (parsing, image paths read and preprocessed, texts
 * encoded with special tokens), with a stand-in VQGAN. Paths point at real images, folders,
 * devices, a FIFO, missing files and escapes from the manifest's folder.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { RgbImage } from '../../src/image/index.js';
import { makeConfig, type RudolphParams } from '../../src/model/config.js';
import { loadDataset } from '../../src/train/data.js';
import type { TextTokenizer } from '../../src/tokenizer/text-encoding.js';
import { YttmTokenizer } from '../../src/tokenizer/yttm.js';
import { mutate } from '../lib/mutate.js';
import { FuzzRng } from '../lib/rng.js';
import type { ImageTokenizer } from '../../src/vqgan/vqgan-model.js';
import { bpeModelText } from '../lib/seeds.js';
import type { FuzzContext, FuzzTarget } from '../target.js';

const PARAMS: RudolphParams = {
  num_layers: 2, hidden_size: 32, num_attention_heads: 2, l_text_seq_length: 8, image_tokens_per_dim: 4, r_text_seq_length: 8,
  kernel_size: 3, last_kernel_size: 3, vocab_size: 0, image_vocab_size: 64, text_special_tokens: 8, image_special_tokens: 0,
  embedding_dropout_prob: 0, attention_dropout_prob: 0, output_dropout_prob: 0, cogview_sandwich_layernorm: true, cogview_pb_relax: true,
};

const codec: ImageTokenizer = {
  async encode(images: RgbImage[]) {
    return new Int32Array(images.length * 16).map((_, i) => i % 64);
  },
  async decodeToImages() {
    throw new Error('not used');
  },
};

let dir = '';
let file = '';
let tokenizer: TextTokenizer;
let paths: string[] = [];
const cfg = (vocab: number) => makeConfig({ ...PARAMS, vocab_size: vocab + PARAMS.l_text_seq_length });
let config: ReturnType<typeof cfg>;

function text(rng: FuzzRng): string {
  return rng.pick([
    'кот', 'рыжий кот на подоконнике', '', '   ', 'x'.repeat(rng.size(100_000)), '\u0000\ud800😀', 'слово '.repeat(rng.size(2000)), '\ufeffbom',
  ]);
}

function line(rng: FuzzRng): string {
  const r = rng.next();
  if (r < 0.05) return rng.pick(['', '{', 'null', '[]', '"text"', '{"image": 1}', '{"left": ["a"]}', '{"caption": "x"}', '\ufeff{}']);
  const rec: Record<string, unknown> = {};
  if (rng.chance(0.6)) rec.image = rng.pick(paths);
  if (rng.chance(0.5)) rec.left = text(rng);
  if (rng.chance(0.5)) rec.right = text(rng);
  if (rng.chance(0.03)) rec.extra = 1;
  return JSON.stringify(rec);
}

export const target: FuzzTarget = {
  name: 'manifest',
  description: 'JSONL manifest bytes → loadDataset (bad lines skipped or rejected) with a stand-in VQGAN',
  async setup(ctx: FuzzContext) {
    dir = path.join(ctx.tmpDir, 'data');
    await mkdir(path.join(dir, 'folder'), { recursive: true });
    file = path.join(dir, 'train.jsonl');
    tokenizer = YttmTokenizer.fromBuffer(new TextEncoder().encode(bpeModelText(new FuzzRng(3000, 0), { rules: 200 })), 'fuzz.model').asTextTokenizer();
    config = cfg(tokenizer.vocabSize);
    await writeFile(path.join(dir, 'a.png'), await sharp({ create: { width: 40, height: 30, channels: 3, background: '#884422' } }).png().toBuffer());
    await writeFile(path.join(dir, 'b.jpg'), await sharp({ create: { width: 16, height: 64, channels: 3, background: '#2244aa' } }).jpeg().toBuffer());
    await writeFile(path.join(dir, 'broken.png'), Buffer.from('not an image at all'));
    await writeFile(path.join(dir, 'empty.png'), Buffer.alloc(0));
    let fifo: string[] = [];
    try {
      execFileSync('mkfifo', [path.join(dir, 'fifo.png')]);
      fifo = ['fifo.png'];
    } catch { /* no mkfifo here: the FIFO case is skipped */ }
    paths = ['a.png', 'b.jpg', path.join(dir, 'a.png'), 'broken.png', 'empty.png', 'missing.png', 'folder', '', '../../../../etc/passwd', '/dev/zero', '/dev/urandom', '/dev/null', '.', 'a.png/x', 'x'.repeat(5000), ...fifo];
  },
  input(rng) {
    const lines = Array.from({ length: rng.size(40) + 1 }, () => line(rng));
    const sep = rng.chance(0.8) ? '\n' : '\r\n';
    const bytes = new TextEncoder().encode((rng.chance(0.1) ? '\ufeff' : '') + lines.join(sep) + (rng.chance(0.5) ? sep : ''));
    return rng.chance(0.7) ? bytes : mutate(rng, bytes);
  },
  async run(input) {
    await writeFile(file, input);
    // both policies, chosen by the input's length: skipping reaches every line, rejecting ends in ManifestError
    await loadDataset(file, { cfg: config, tokenizer, vqgan: codec, onBadLine: input.length % 2 ? 'skip' : 'reject' });
  },
};
