/**
 * onnxruntime-web sessions: WASM (multi-threaded when the page is cross-origin isolated) and
 * WebGPU. A graph built in the tab is serialized into one in-memory weights buffer handed to
 * onnxruntime as external data (protobuf's 2 GB limit does not apply to it); the buffer is
 * dropped as soon as the session holds its own copy.
 */
import * as ort from 'onnxruntime-web';
import { RudolphError } from '../../errors.js';
import type { GraphBuilder } from '../../onnx/graph.js';
import type { ExecutionProvider, SessionOptions } from '../types.js';

/** Name of the external weights file inside serialized graphs (any name works: it never touches a disk). */
const WEIGHTS_FILE = 'weights.bin';

/** onnxruntime-web execution providers: 'cpu' means WASM here; WebGPU when asked for (and available). */
export function webExecutionProviders(eps: readonly ExecutionProvider[] | undefined): ('webgpu' | 'wasm')[] {
  const out: ('webgpu' | 'wasm')[] = [];
  for (const ep of eps ?? []) {
    if (ep === 'webgpu' && !out.includes('webgpu')) out.push('webgpu');
    else if (ep !== 'webgpu' && ep !== 'wasm' && ep !== 'cpu') {
      throw new RudolphError('RUNTIME', `execution provider "${ep}" is not available in a browser (use webgpu or wasm)`);
    }
  }
  out.push('wasm');
  return out;
}

/**
 * WASM threads are a process-wide setting of onnxruntime-web, fixed when its first session starts:
 * the first `threads` given wins (default: what the browser reports, capped at 4 as onnxruntime-web does).
 */
function applyThreads(threads: number | undefined): void {
  if (ort.env.wasm.numThreads === undefined && threads !== undefined) ort.env.wasm.numThreads = threads;
}

function sessionOptions(opts: SessionOptions, externalData?: Uint8Array): ort.InferenceSession.SessionOptions {
  applyThreads(opts.threads);
  return {
    executionProviders: webExecutionProviders(opts.executionProviders),
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // warnings (e.g. shape ops kept on the CPU beside WebGPU) would reach the console as errors
    logSeverityLevel: 3,
    ...(externalData ? { externalData: [{ path: WEIGHTS_FILE, data: externalData }] } : {}),
  };
}

/** A session on graph bytes, or on a graph URL (onnxruntime-web fetches it). */
export async function createWebSession(model: Uint8Array | string, opts: SessionOptions): Promise<ort.InferenceSession> {
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, sessionOptions(opts))
    : ort.InferenceSession.create(model, sessionOptions(opts));
}

/**
 * Serializes the graph (lazy weights are loaded, converted and written one at a time) into one
 * preallocated weights buffer, opens the session on it and lets the buffer go.
 */
export async function webSessionOnGraph(g: GraphBuilder, opts: SessionOptions): Promise<ort.InferenceSession> {
  // small graphs: every weight inline in the model bytes (lazy ones loaded on the way)
  if (g.weightBytes < 1024 * 1024) return createWebSession(await g.serialize(async () => {}, WEIGHTS_FILE, Infinity), opts);
  const weights = await serializeToMemory(g);
  g.releaseWeights();
  return ort.InferenceSession.create(weights.model, sessionOptions(opts, weights.data));
}

/** The graph and its external weights, in memory, in one buffer sized by the graph's bound. */
export async function serializeToMemory(g: GraphBuilder): Promise<{ model: Uint8Array; data: Uint8Array }> {
  let buffer = new Uint8Array(g.serializedBytesBound);
  let at = 0;
  const model = await g.serialize(async (bytes) => {
    if (at + bytes.byteLength > buffer.byteLength) {
      // a lazy weight larger than it announced: grow (not expected; kept correct rather than fast)
      const grown = new Uint8Array(Math.max(buffer.byteLength * 1.25, at + bytes.byteLength + 4096 * 64));
      grown.set(buffer.subarray(0, at));
      buffer = grown;
    }
    buffer.set(bytes, at);
    at += bytes.byteLength;
  }, WEIGHTS_FILE);
  return { model, data: buffer.subarray(0, at) };
}
