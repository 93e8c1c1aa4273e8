/**
 * `npm run bench -- precision`: each precision against fp32 on the same weights and inputs — the
 * golden models (their forward_full inputs) and the 350M preset (random weights, one full
 * sequence): max |logit error| (absolute and relative to the largest |logit|), top-1 agreement of
 * the next-token argmax, mean KL(fp32 ‖ precision) of the next-token distributions, and the
 * perplexity drift of the sequence. Next tokens are scored over their own range, as sampling does:
 * the image vocabulary inside the image block, the text vocabulary elsewhere.
 * fp16 is measured through the graph that rounds to float16 in float32 ops (what a GPU's fp16
 * computes; onnxruntime on CPU would upcast). Env: PRECISIONS (default: every one the graph
 * offers besides fp32), SKIP_350M=1.
 */
import path from 'node:path';
import { loadStateDict } from '../src/io/checkpoint.js';
import { configFromJson, type RudolphConfig } from '../src/model/config.js';
import { type LinearPrecision, PRECISIONS } from '../src/model/graph-context.js';
import { RudolphModel } from '../src/model/rudolph-model.js';
import { randomWeights, type RudolphWeights, weightsFromStateDict } from '../src/model/weights.js';
import { presetConfig } from '../src/presets.js';
import { readText } from '../src/runtime/current.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { GOLDEN_DIR } from '../test/helpers.js';

interface Metrics { max_abs_err: number; rel_err: number; top1_agreement: number; mean_kl: number; ppl_fp32: number; ppl: number; ppl_drift: number }

function nextRange(cfg: RudolphConfig, nextPos: number): [number, number] {
  const inImage = nextPos >= cfg.l && nextPos < cfg.l + cfg.imageLength;
  return inImage ? [cfg.textVocab, cfg.textVocab + cfg.imageVocab] : [0, cfg.textVocab - cfg.l];
}

function logSoftmax(x: Float32Array, from: number, to: number): Float64Array {
  let m = -Infinity;
  for (let i = from; i < to; i++) m = Math.max(m, x[i]);
  let s = 0;
  for (let i = from; i < to; i++) s += Math.exp(x[i] - m);
  const lse = m + Math.log(s);
  const out = new Float64Array(to - from);
  for (let i = from; i < to; i++) out[i - from] = x[i] - lse;
  return out;
}

function compare(cfg: RudolphConfig, ids: number[], batch: number, ref: Float32Array, got: Float32Array): Metrics {
  const W = cfg.logitsWidth, T = ids.length / batch;
  let maxAbs = 0, maxRef = 0, agree = 0, kl = 0, n = 0, nllRef = 0, nll = 0;
  for (let i = 0; i < ref.length; i++) { maxAbs = Math.max(maxAbs, Math.abs(ref[i] - got[i])); maxRef = Math.max(maxRef, Math.abs(ref[i])); }
  for (let b = 0; b < batch; b++) {
    for (let p = 0; p + 1 < T; p++) {
      const [from, to] = nextRange(cfg, p + 1);
      const r = ref.subarray((b * T + p) * W, (b * T + p + 1) * W), g = got.subarray((b * T + p) * W, (b * T + p + 1) * W);
      const lr = logSoftmax(r, from, to), lg = logSoftmax(g, from, to);
      let ar = 0, ag = 0;
      for (let i = 0; i < lr.length; i++) { if (lr[i] > lr[ar]) ar = i; if (lg[i] > lg[ag]) ag = i; kl += Math.exp(lr[i]) * (lr[i] - lg[i]); }
      if (ar === ag) agree++;
      // a text id is its column; an image id is its column within the image range
      const col = Math.min(Math.max(ids[b * T + p + 1], 0), to - from - 1);
      nllRef -= lr[col]; nll -= lg[col];
      n++;
    }
  }
  return {
    max_abs_err: maxAbs, rel_err: maxAbs / maxRef, top1_agreement: agree / n, mean_kl: kl / n,
    ppl_fp32: Math.exp(nllRef / n), ppl: Math.exp(nll / n), ppl_drift: Math.exp(nll / n) / Math.exp(nllRef / n) - 1,
  };
}

async function measure(name: string, cfg: RudolphConfig, weights: RudolphWeights, ids: number[], batch: number, precisions: LinearPrecision[]) {
  const out: Record<string, Metrics | string> = {};
  const fp32 = await RudolphModel.fromWeights(cfg, weights, { threads: 2 });
  const ref = (await fp32.forward(ids, batch)).logits!;
  await fp32.release();
  for (const p of precisions) {
    try {
      // fp16 on a CPU: the float32 graph that rounds every linear's weights, inputs and outputs to
      // float16 (onnxruntime would upcast real float16 Gemms and hide the rounding)
      const m = await RudolphModel.fromWeights(cfg, weights, { threads: 2, precision: p, quant: p === 'fp16' ? { fp16Compute: 'rounded' } : undefined });
      out[p] = compare(cfg, ids, batch, ref, (await m.forward(ids, batch)).logits!);
      await m.release();
    } catch (e) {
      out[p] = `error: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  return { model: name, batch, length: ids.length / batch, ...out };
}

const precisions = (process.env.PRECISIONS?.split(',') ?? PRECISIONS.filter((p) => p !== 'fp32')) as LinearPrecision[];
const results: unknown[] = [];
for (const name of ['rudolph-tiny', 'rudolph-small']) {
  const dir = path.join(GOLDEN_DIR, name);
  const cfg = configFromJson(JSON.parse(await readText(path.join(dir, 'config.json'))));
  const weights = weightsFromStateDict(cfg, await loadStateDict(path.join(dir, 'pytorch_model.bin'), { toFloat32: true }));
  const golden = await SafetensorsFile.open(path.join(dir, 'golden.safetensors'));
  const t = await golden.read('forward_full/input_ids').catch(async () => golden.read(golden.keys().find((k) => k.endsWith('input_ids'))!));
  await golden.close();
  results.push(await measure(name, cfg, weights, Array.from(t.data as ArrayLike<number>, Number), t.shape[0], precisions));
}
if (!process.env.SKIP_350M) {
  const cfg = presetConfig('350M');
  const ids = Array.from({ length: cfg.totalLength }, (_, i) => (i >= cfg.l && i < cfg.l + cfg.imageLength ? (i * 7919) % cfg.imageVocab : 5 + ((i * 131) % 16000)));
  results.push(await measure('350M (random weights)', cfg, randomWeights(cfg, 7), ids, 1, precisions));
}
console.log(JSON.stringify({ precisions, results }, null, 1));
