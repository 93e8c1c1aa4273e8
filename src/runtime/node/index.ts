/**
 * The Node runtime: onnxruntime-node sessions (opened by path where that is leaner), files on
 * disk, images through sharp, models from the hub cache with converted graphs on disk. Importing this module registers it (the package's Node entry and
 * the CLI/server do).
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { GraphBuilder } from '../../onnx/graph.js';
import { loadPretrained } from '../../pretrained/load-pretrained.js';
import { useModelLoader } from '../../rudolph.js';
import { useRuntime } from '../current.js';
import type { Runtime, SessionOptions } from '../types.js';
import { openFileBytes } from './byte-source.js';
import { encodePng, readImage } from './image-files.js';
import { saveGraph } from './graph-files.js';

/**
 * Graphs above this many weight bytes are opened by path (RUNTIME.md: faster and leaner than from
 * memory; the Sber VQGAN opened 6× faster and ~500 MB leaner: 0.4 s / 0.78 GB vs 2.4 s / 1.28 GB).
 */
const OPEN_BY_PATH_BYTES = 16 * 1024 * 1024;

function sessionOptions(opts: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [...(opts.executionProviders ?? []).filter((p) => p !== 'cpu'), 'cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    enableMemPattern: opts.memoryPattern ?? true,
    interOpNumThreads: 1,
    ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
  };
}

async function createSession(model: Uint8Array | string, opts: SessionOptions): Promise<ort.InferenceSession> {
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, sessionOptions(opts))
    : ort.InferenceSession.create(model, sessionOptions(opts));
}

/** Large graphs go through a temporary folder (graph + external weights), opened by path and removed. */
async function sessionOnGraph(g: GraphBuilder, opts: SessionOptions): Promise<ort.InferenceSession> {
  if (g.weightBytes < OPEN_BY_PATH_BYTES) return createSession(g.toBytes(), opts);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'rudolph-graph-'));
  try {
    await saveGraph(g, dir);
    g.releaseWeights();
    return await createSession(path.join(dir, 'model.onnx'), opts);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

export const nodeRuntime: Runtime = {
  name: 'node',
  onnxruntimeVersion: ort.env.versions.node ?? 'unknown',
  tensor: (type, data, dims) => new ort.Tensor(type, data, dims as number[]),
  createSession,
  sessionOnGraph,
  openBytes: openFileBytes,
  decodeImage: (bytes, opts) => readImage(bytes, opts),
  encodePng: async (image) => {
    const png = await encodePng(image);
    return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
  },
};

useRuntime(nodeRuntime);
useModelLoader(loadPretrained);

export { readImage, writePng, encodePng } from './image-files.js';
export { saveGraph } from './graph-files.js';
