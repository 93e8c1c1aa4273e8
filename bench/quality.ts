/**
 * Quality of each precision on the yardstick model (issue 16): held-out perplexity, logit error
 * and next-token KL against fp32. Prints `{ fp32|fp16|int8|q4: { perplexity, max_abs_logit_error, kl, … } }`
 * (→ bench/results/quality.json) and writes the explored variants (MatMulNBits block sizes, the
 * q4 head and embeddings, the int8 kernel) to bench/results/quality-variants.json.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluateVariants, loadYardstick, PRECISION_VARIANTS, type Variant } from './yardstick/evaluate.js';

const VARIANTS: Record<string, Variant> = {
  'int8 nbits8 b32': { precision: 'int8', quant: { int8Kernel: 'nbits8', blockSize: 32 } },
  'int8 nbits8 b128': { precision: 'int8', quant: { int8Kernel: 'nbits8', blockSize: 128 } },
  'q4 b32': { precision: 'q4', quant: { blockSize: 32 } },
  'q4 b64': { precision: 'q4', quant: { blockSize: 64 } },
  'q4 b128': { precision: 'q4', quant: { blockSize: 128 } },
  'q4 b32 head q4': { precision: 'q4', quant: { blockSize: 32, q4Head: 'nbits4' } },
  'q4 b32 head fp32, embeddings fp32': { precision: 'q4', quant: { blockSize: 32, q4Head: 'fp32', embeddings: 'fp32' } },
  'q4 b32 accuracy level 0 (float compute)': { precision: 'q4', quant: { blockSize: 32, accuracyLevel: 0 } },
  'fp16 as a GPU graph (CPU upcasts: weights rounding only)': { precision: 'fp16' },
};

export async function benchQuality(): Promise<Record<string, unknown>> {
  const y = await loadYardstick();
  const main = await evaluateVariants(y, PRECISION_VARIANTS);
  const variants = await evaluateVariants(y, VARIANTS);
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, 'quality-variants.json'), `${JSON.stringify({ sequences: y.sequences.length, ...variants }, null, 1)}\n`);
  for (const [name, q] of Object.entries({ ...main, ...variants })) {
    console.error(`${name.padEnd(58)} ppl ${q.perplexity.toFixed(4)}  max|Δ| ${q.max_abs_logit_error.toFixed(4)}  mean|Δ| ${q.mean_abs_logit_error.toFixed(5)}  KL ${q.kl.toExponential(2)}  top-1 ${(100 * q.top1_agreement).toFixed(2)}%`);
  }
  return main;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchQuality(), null, 1));
}
