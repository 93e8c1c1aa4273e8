/**
 * Trains the yardstick model of test/data/yardstick/ (issue 16): a small RUDOLPH fine-tuned with the
 * project's own trainer (src/train) from seeded random weights on real Russian text — the
 * aphorisms and quotes of Debian's `fortunes-ru` package — so that quantisation is judged on weights
 * with learned structure instead of random ones. Deterministic by seed (data split, data order,
 * initial weights; dropout is off).
 *
 *   flock /work/heavy.lock node --import tsx bench/yardstick/train.ts [--source DIR] [--steps N] [--work DIR]
 *
 * `--source` is an unpacked fortunes-ru (`apt-get download fortunes-ru=1.52-3.1 && dpkg-deb -x
 * fortunes-ru_1.52-3.1_all.deb DIR`); without it the script runs those two commands itself.
 * Writes test/data/yardstick/{config.json, model.safetensors (fp16, like the official checkpoint),
 * bpe.model, heldout.txt, train-log.json}.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { saveSafetensors } from '../../src/io/safetensors-writer.js';
import { configToJson, makeConfig, type RudolphParams } from '../../src/model/config.js';
import { parameterSpecs, randomWeights } from '../../src/model/weights.js';
import { loadWeights } from '../../src/pretrained/model-dir.js';
import { floatToHalfBits, type StateDict } from '../../src/tensor.js';
import { finetune } from '../../src/train/run.js';
import { Rng } from '../../src/util/random.js';
import { REPO_ROOT, TOKENIZER_DIR } from '../../test/helpers.js';

export const YARDSTICK_DIR = path.join(REPO_ROOT, 'test', 'data', 'yardstick');
const PACKAGE = { name: 'fortunes-ru', version: '1.52-3.1', sha256: '2dc76af9c0e02e2926d36f88dcb685bb171fab8677e553a6def41efe8a551cc6' };

/** 6 layers × 256 hidden (head dim 64 like the 350M), a 128-token left text, the 512-token BPE. */
export const YARDSTICK_PARAMS: RudolphParams = {
  num_layers: 6, hidden_size: 256, num_attention_heads: 4,
  l_text_seq_length: 128, image_tokens_per_dim: 8, r_text_seq_length: 16, kernel_size: 7, last_kernel_size: 9,
  vocab_size: 512 + 128, image_vocab_size: 128, text_special_tokens: 0, image_special_tokens: 0,
  embedding_dropout_prob: 0.1, attention_dropout_prob: 0.1, output_dropout_prob: 0.1,
  cogview_sandwich_layernorm: true, cogview_pb_relax: true,
};

const { values: args } = parseArgs({
  options: {
    source: { type: 'string' },
    work: { type: 'string' },
    steps: { type: 'string', default: '3000' },
    'batch-size': { type: 'string', default: '8' },
    lr: { type: 'string', default: '1e-3' },
    seed: { type: 'string', default: '16' },
    heldout: { type: 'string', default: '400' },
    threads: { type: 'string', default: '2' },
  },
});

/** Every fortune of the package's text files (not the .dat indexes), whitespace-normalised, in a fixed order. */
async function readFortunes(root: string): Promise<string[]> {
  const dir = path.join(root, 'usr/share/games/fortunes/ru');
  const files = (await fsp.readdir(dir)).filter((f) => !f.endsWith('.dat') && !f.endsWith('.u8')).sort();
  const seen = new Set<string>();
  const out: string[] = [];
  for (const f of files) {
    const text = await fsp.readFile(path.join(dir, f), 'utf8');
    for (const raw of text.split(/\n%\n/)) {
      const t = raw.replace(/\s+/g, ' ').trim();
      if (t.length < 20 || seen.has(t)) continue;
      seen.add(t);
      out.push(t);
    }
  }
  return out;
}

async function unpackPackage(work: string): Promise<string> {
  const deb = path.join(work, `${PACKAGE.name}_${PACKAGE.version}_all.deb`);
  if (!existsSync(deb)) execFileSync('apt-get', ['download', `${PACKAGE.name}=${PACKAGE.version}`], { cwd: work, stdio: 'inherit' });
  const digest = createHash('sha256').update(await fsp.readFile(deb)).digest('hex');
  if (digest !== PACKAGE.sha256) throw new Error(`${deb}: sha256 ${digest}, expected ${PACKAGE.sha256}`);
  const dir = path.join(work, 'pkg');
  execFileSync('dpkg-deb', ['-x', deb, dir]);
  return dir;
}

async function main(): Promise<void> {
  const seed = Number(args.seed);
  const work = args.work ?? await fsp.mkdtemp(path.join(os.tmpdir(), 'yardstick-'));
  await fsp.mkdir(work, { recursive: true });
  const source = args.source ?? await unpackPackage(work);
  const fortunes = await readFortunes(source);
  // the split: a seeded shuffle, the last `heldout` fortunes are never trained on
  const order = fortunes.map((_, i) => i);
  const rng = new Rng(seed, 1);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const nHeld = Number(args.heldout);
  const train = order.slice(0, order.length - nHeld).map((i) => fortunes[i]);
  const held = order.slice(order.length - nHeld).map((i) => fortunes[i]);
  console.error(`${fortunes.length} fortunes: ${train.length} train, ${held.length} held out`);

  const cfg = makeConfig(YARDSTICK_PARAMS);
  const init = path.join(work, 'init');
  await fsp.mkdir(init, { recursive: true });
  const sd: StateDict = new Map();
  for (const [name, data] of randomWeights(cfg, seed)) sd.set(name, { dtype: 'float32', shape: [data.length], data });
  // shapes as the config wants them (randomWeights is flat)
  for (const spec of parameterSpecs(cfg)) sd.get(spec.name)!.shape = spec.shape;
  await saveSafetensors(path.join(init, 'model.safetensors'), sd);
  await fsp.writeFile(path.join(init, 'config.json'), JSON.stringify(configToJson(cfg), null, 1));
  await fsp.copyFile(path.join(TOKENIZER_DIR, 'bpe-512.model'), path.join(init, 'bpe.model'));
  await fsp.writeFile(path.join(work, 'train.jsonl'), train.map((t) => JSON.stringify({ left: t })).join('\n') + '\n');

  const out = path.join(work, 'run');
  const steps = Number(args.steps);
  const t0 = performance.now();
  let last = 0;
  const res = await finetune({
    data: path.join(work, 'train.jsonl'), model: init, vqgan: false, out, steps, batchSize: Number(args['batch-size']),
    lr: Number(args.lr), weightDecay: 0.01, clip: 1, lossWeights: { left: 1, image: 0, right: 0 },
    schedule: 'cosine', warmupSteps: Math.round(steps / 20), seed, dropout: false, checkpointEvery: steps, threads: Number(args.threads),
    onBadLine: 'skip', onWarning: () => {},
    onProgress: (p) => {
      if (p.step - last >= 50 || p.step === p.totalSteps) {
        last = p.step;
        console.error(`step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)} lr ${p.lr.toExponential(2)} ${p.samplesPerSecond.toFixed(1)} samples/s eta ${p.etaSeconds.toFixed(0)} s`);
      }
    },
  });
  const trainSeconds = (performance.now() - t0) / 1000;
  console.error(`trained ${res.steps} steps in ${trainSeconds.toFixed(0)} s: loss ${res.firstLoss.toFixed(3)} → ${res.lastLoss.toFixed(3)}`);

  // the repository copy: fp16 weights (as the official checkpoint ships), the tokenizer, the held-out text
  const trained = await loadWeights(cfg, path.join(out, 'model', 'model.safetensors'));
  const half: StateDict = new Map();
  for (const spec of parameterSpecs(cfg)) half.set(spec.name, { dtype: 'float16', shape: spec.shape, data: floatToHalfBits(trained.get(spec.name)!) });
  await fsp.mkdir(YARDSTICK_DIR, { recursive: true });
  await saveSafetensors(path.join(YARDSTICK_DIR, 'model.safetensors'), half, { metadata: { format: 'pt', producer: 'rudolph-ts bench/yardstick/train.ts' } });
  await fsp.writeFile(path.join(YARDSTICK_DIR, 'config.json'), `${JSON.stringify(configToJson(cfg), null, 1)}\n`);
  await fsp.copyFile(path.join(TOKENIZER_DIR, 'bpe-512.model'), path.join(YARDSTICK_DIR, 'bpe.model'));
  await fsp.writeFile(path.join(YARDSTICK_DIR, 'heldout.txt'), held.join('\n') + '\n');
  const log = (await fsp.readFile(res.logFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
  const every = log.filter((e) => e.step % 100 === 0 || e.step === 1);
  await fsp.writeFile(path.join(YARDSTICK_DIR, 'train-log.json'), `${JSON.stringify({
    package: PACKAGE, seed, steps: res.steps, batchSize: Number(args['batch-size']), lr: Number(args.lr), train: train.length, heldout: held.length,
    trainSeconds: Math.round(trainSeconds), firstLoss: res.firstLoss, lastLoss: res.lastLoss,
    loss: every.map((e) => [e.step, Number(e.loss.toFixed(4))]),
  }, null, 1)}\n`);
  console.error(`wrote ${YARDSTICK_DIR}`);
}

await main();
