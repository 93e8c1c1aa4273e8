/**
 * Model benchmark (issues 2, 16): the 350M-v2 preset with random weights at one precision,
 * converted to a graph folder and opened by path as the converted-model cache does. Reports the
 * session build time (with the model's one-token warm-up run) and RSS (after build and after decoding, in GB of weights), a full forward
 * 1×384, cached decoding of 256 image tokens at batch 1 and 8 (last-position logits only), a full
 * sampled 256-token generation at batch 1 in a fresh process (bench/generate.ts, which also reports
 * that process's memory before and after opening the graph, as a user's process has it), the machine's
 * read bandwidth (in-process probe), the weight bytes read per decoded token and so each speed as a
 * fraction of its bandwidth limit. The machine is shared: other tenants' traffic moves its read
 * bandwidth by ±30% within minutes, so each timed phase gets its own limit from probes taken right
 * before and after it (their mean), and the fraction compares figures taken together.
 *
 *   node --import tsx bench/model.ts [--precision fp32|fp16|int8|q4] [--block-size 32]
 */
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { RudolphConfig } from '../src/model/config.js';
import { DEFAULT_QUANT, type LinearPrecision, type QuantOptions } from '../src/model/graph-context.js';
import { buildRudolphGraph } from '../src/model/rudolph-graph.js';
import { RudolphModel } from '../src/model/rudolph-model.js';
import { randomWeights } from '../src/model/weights.js';
import { presetConfig } from '../src/presets.js';
import { saveGraph } from '../src/runtime/node/graph-files.js';
import { readBandwidthGBps } from './bandwidth.js';
import type { GenerateReport } from './generate.js';

export interface ModelBenchOptions { precision?: LinearPrecision; quant?: QuantOptions; decodeTokens?: number; batches?: number[]; threads?: number }

const rssMb = () => process.memoryUsage().rss / 1048576;
/** Full GC; freed ArrayBuffers give their memory back only after a turn of the event loop. */
async function gc(): Promise<void> {
  const run = (globalThis as { gc?: () => void }).gc;
  run?.();
  await new Promise((r) => setTimeout(r, 50));
  run?.();
}

/** Bytes of the two embedding tables at a precision: only a row per token of them is read when decoding. */
function embeddingBytes(cfg: RudolphConfig, precision: LinearPrecision, quant: QuantOptions): number {
  const rows = cfg.textVocab + cfg.imageVocabTotal;
  if (precision === 'fp32') return rows * cfg.hidden * 4;
  if (precision === 'fp16') return rows * cfg.hidden * 2;
  return ({ ...DEFAULT_QUANT, ...quant }.embeddings === 'fp32') ? rows * cfg.hidden * 4 : rows * (cfg.hidden + 4);
}

/**
 * Tokens/s of cached decoding at `batch` after a left-text prefill. A function of its own: an async
 * function keeps its block-scoped locals (here the KV cache, 0.5 GB at batch 8) until it returns.
 */
async function decodeSpeed(model: RudolphModel, cfg: RudolphConfig, ids: number[], batch: number, tokens: number): Promise<number> {
  const cache = model.newCache(batch, cfg.l + cfg.imageLength);
  const left: number[] = [];
  for (let b = 0; b < batch; b++) left.push(...ids.slice(0, cfg.l));
  await model.step(cache, left);
  const s = performance.now();
  for (let i = 0; i < tokens; i++) await model.step(cache, new Array(batch).fill(i % 8192));
  return (tokens * batch) / ((performance.now() - s) / 1000);
}

export async function benchModel(opts: ModelBenchOptions = {}): Promise<Record<string, number | string>> {
  const cfg = presetConfig('350M');
  const precision = opts.precision ?? 'fp32';
  const quant = opts.quant ?? {};
  const decodeTokens = opts.decodeTokens ?? 256;
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), `rudolph-bench-${precision}-`));
  const result: Record<string, number | string> = { preset: '350M', precision, ...(precision === 'q4' || quant.int8Kernel === 'nbits8' ? { block_size: quant.blockSize ?? DEFAULT_QUANT.blockSize } : {}) };
  try {
    // convert (random weights → graph folder) as the converted-model cache does, then open by path
    let t = performance.now();
    {
      const weights = randomWeights(cfg, 7);
      result.random_weights_s = (performance.now() - t) / 1000;
      t = performance.now();
      await saveGraph(buildRudolphGraph(cfg, weights, { precision, quant }), dir);
      weights.clear();
      result.convert_s = (performance.now() - t) / 1000;
    }
    await gc();
    const weightBytes = (await fsp.stat(path.join(dir, 'weights.bin'))).size + (await fsp.stat(path.join(dir, 'model.onnx'))).size;
    result.weight_bytes = weightBytes;
    result.weight_bytes_per_token = weightBytes - embeddingBytes(cfg, precision, quant);
    result.rss_before_open_mb = rssMb();
    t = performance.now();
    const model = await RudolphModel.fromGraphFile(cfg, path.join(dir, 'model.onnx'), { precision, quant, threads: opts.threads });
    result.session_build_s = (performance.now() - t) / 1000;
    await gc();
    result.rss_after_build_mb = rssMb();

    const ids = Array.from({ length: 384 }, (_, i) => (i < cfg.l || i >= cfg.l + cfg.imageLength ? 5 + (i % 100) : i % 8192));
    await model.forward(ids.slice(0, 16), 1, { select: 'last' }); // warm-up
    const times: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const s = performance.now();
      await model.forward(ids, 1);
      times.push((performance.now() - s) / 1000);
    }
    times.sort((a, b) => a - b);
    result.forward_1x384_s = times[1];

    const probes: number[] = [];
    const probe = async () => { const bw = await readBandwidthGBps({ threads: opts.threads, bytes: 512 * 1048576, runs: 5 }); probes.push(bw); return bw; };
    for (const batch of opts.batches ?? [1, 8]) {
      const before = batch === 1 ? await probe() : 0;
      result[`decode_b${batch}_tokens_per_s`] = await decodeSpeed(model, cfg, ids, batch, decodeTokens);
      if (batch === 1) result.decode_b1_bandwidth_gbps = (before + await probe()) / 2;
    }
    await gc();
    result.rss_after_decode_mb = rssMb();
    // the session's own share: what opening it added to the process (node + onnxruntime ≈ 90 MB before)
    result.rss_after_build_per_weight_byte = (result.rss_after_build_mb as number * 1048576) / weightBytes;
    result.session_rss_per_weight_byte = ((result.rss_after_build_mb as number - (result.rss_before_open_mb as number)) * 1048576) / weightBytes;
    result.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
    await model.release();

    // a full sampled generation in a fresh process (its own warm-up, as a user's first call)
    const before = await probe();
    const child = execFileSync(process.execPath, ['--import', 'tsx', path.join(path.dirname(fileURLToPath(import.meta.url)), 'generate.ts'), dir, precision, ...(opts.threads ? [String(opts.threads)] : [])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const gen = JSON.parse(child.slice(child.indexOf('{'))) as GenerateReport;
    result.generate_b1_tokens_per_s = gen.tokens / gen.runs_s[0];
    result.generate_b1_runs_s = gen.runs_s.map((s) => s.toFixed(3)).join(' ');
    result.generate_b1_bandwidth_gbps = (before + await probe()) / 2;
    // memory as a user's process has it: one that opens the converted graph and nothing before
    const { before_open: pre, after_build: post } = gen.memory;
    result.fresh_process_rss_before_open_mb = pre.rss_mb;
    result.fresh_process_rss_after_build_mb = post.rss_mb;
    result.fresh_process_rss_after_build_per_weight_byte = (post.rss_mb * 1048576) / weightBytes;
    // what opening the session added, anonymous (weights, arenas) and file-backed (onnxruntime's code pages)
    result.fresh_process_session_anon_per_weight_byte = ((post.anon_mb - pre.anon_mb) * 1048576) / weightBytes;
    result.fresh_process_session_file_mb = post.file_mb - pre.file_mb;
    result.bandwidth_gbps = probes.reduce((a, b) => a + b, 0) / probes.length;
    result.bandwidth_probes_gbps = probes.map((b) => b.toFixed(1)).join(' ');
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
  // the limit: reading every weight byte once per token at the read bandwidth of the moment
  const limit = (gbps: number) => (gbps * 1e9) / (result.weight_bytes_per_token as number);
  result.limit_tokens_per_s = limit(result.bandwidth_gbps as number);
  result.decode_b1_fraction_of_limit = (result.decode_b1_tokens_per_s as number) / limit(result.decode_b1_bandwidth_gbps as number);
  result.generate_b1_fraction_of_limit = (result.generate_b1_tokens_per_s as number) / limit(result.generate_b1_bandwidth_gbps as number);
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { precision: { type: 'string', default: 'fp32' }, 'block-size': { type: 'string' }, int8: { type: 'boolean' } } });
  const precision = (values.int8 ? 'int8' : values.precision) as LinearPrecision;
  const quant: QuantOptions = values['block-size'] ? { blockSize: Number(values['block-size']) } : {};
  console.log(JSON.stringify(await benchModel({ precision, quant, decodeTokens: Number(process.env.DECODE_TOKENS ?? 256) }), null, 1));
}
