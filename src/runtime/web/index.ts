/**
 * The web runtime: onnxruntime-web sessions (WASM, WebGPU), files over fetch with HTTP Range
 * (kept in the Cache API), images through createImageBitmap/OffscreenCanvas, models straight
 * from the hub's official files. Importing this module registers it (the `rudolph-ts/web` entry does).
 */
import * as ort from 'onnxruntime-web';
import { useModelLoader } from '../../rudolph.js';
import { useRuntime } from '../current.js';
import type { Runtime } from '../types.js';
import { openUrlBytes } from './byte-source.js';
import { decodeImageWeb, encodePngWeb } from './image-codec.js';
import { loadPretrainedWeb } from './loader.js';
import { createWebSession, webSessionOnGraph } from './sessions.js';

export interface WebRuntimeSettings {
  /** where onnxruntime-web's .wasm/.mjs files are served (default: beside the bundle that imports it) */
  wasmPaths?: string;
  /** WASM threads (default: onnxruntime-web's choice; 1 when the page is not cross-origin isolated) */
  threads?: number;
}

/** Settings that onnxruntime-web reads when its first session starts. */
export function configureWebRuntime(s: WebRuntimeSettings): void {
  if (s.wasmPaths !== undefined) ort.env.wasm.wasmPaths = s.wasmPaths;
  if (s.threads !== undefined) ort.env.wasm.numThreads = s.threads;
}

/** Whether this browser offers WebGPU with an adapter (a GPU, or a software one). */
export async function webgpuAvailable(): Promise<{ available: boolean; shaderF16: boolean; reason?: string }> {
  const gpu = (globalThis.navigator as Navigator & { gpu?: { requestAdapter(): Promise<{ features: ReadonlySet<string> } | null> } }).gpu;
  if (!gpu) return { available: false, shaderF16: false, reason: 'this browser has no WebGPU (navigator.gpu)' };
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) return { available: false, shaderF16: false, reason: 'WebGPU has no adapter here' };
    return { available: true, shaderF16: adapter.features.has('shader-f16') };
  } catch (e) {
    return { available: false, shaderF16: false, reason: `WebGPU adapter request failed: ${(e as Error).message}` };
  }
}

export const webRuntime: Runtime = {
  name: 'web',
  onnxruntimeVersion: ort.env.versions.web ?? ort.env.versions.common ?? 'unknown',
  tensor: (type, data, dims) => new ort.Tensor(type, data, dims as number[]),
  createSession: createWebSession,
  sessionOnGraph: webSessionOnGraph,
  openBytes: (location) => openUrlBytes(new URL(location, globalThis.location?.href).href),
  decodeImage: decodeImageWeb,
  encodePng: encodePngWeb,
};

// onnxruntime-web's own warnings go to the console as errors; sessions log errors only (sessions.ts)
ort.env.logLevel = 'error';

useRuntime(webRuntime);
useModelLoader(loadPretrainedWeb);
