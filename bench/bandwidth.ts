/**
 * The machine's memory read bandwidth, probed in-process through onnxruntime (issue 16): a
 * ReduceSum over a 1 GiB float32 input fed zero-copy from JS, with the session's threads — the
 * same engine and threads that read the weights when decoding. The median of a few runs, in GB/s
 * (1e9): the limit of a phase that lasts seconds is the bandwidth it can sustain, and on the shared
 * machine the fastest of a few 15 ms reads catches other tenants' idle moments (best-of probes read
 * 55 and 50 GB/s around an fp32 generation that took as long as one probed at 36 and 38 GB/s).
 */
import * as ort from 'onnxruntime-node';
import { attr, GraphBuilder } from '../src/onnx/graph.js';

export async function readBandwidthGBps(opts: { bytes?: number; runs?: number; threads?: number } = {}): Promise<number> {
  const cols = 1 << 16;
  const rows = Math.floor((opts.bytes ?? 1 << 30) / 4 / cols);
  const g = new GraphBuilder('bandwidth');
  const x = g.input('x', 'float32', [rows, cols]);
  g.output(g.op('ReduceSum', [x, g.int64s([1])], { keepdims: attr.int(0) }), 'y', 'float32', [rows]);
  const session = await ort.InferenceSession.create(g.toBytes(), { ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}), interOpNumThreads: 1 });
  const data = new Float32Array(rows * cols).fill(1); // touched: resident before timing
  const feed = { x: new ort.Tensor('float32', data, [rows, cols]) };
  const times: number[] = [];
  try {
    await session.run(feed); // first run: onnxruntime's own allocations
    for (let i = 0; i < (opts.runs ?? 7); i++) {
      const t0 = performance.now();
      await session.run(feed);
      times.push(performance.now() - t0);
    }
  } finally {
    await session.release();
  }
  times.sort((a, b) => a - b);
  return data.byteLength / (times[times.length >> 1] / 1000) / 1e9;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify({ bandwidth_gbps: await readBandwidthGBps(), bandwidth_1thread_gbps: await readBandwidthGBps({ threads: 1 }) }));
}
