/**
 * The runtime seam: the few things the core needs from the platform it runs on. The core
 * (config, graph builder, tokenizer, tasks, sampling, VQGAN graph, checkpoint parsing over
 * bytes) imports no Node module; it reaches onnxruntime, files and image codecs only through
 * the `Runtime` registered by the entry point (`runtime/node` for Node; a web runtime plugs in
 * the same way). Adding a runtime = implementing this interface and registering it.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import type { RgbImage } from '../image/rgb-image.js';
import type { GraphBuilder } from '../onnx/graph.js';

export type { InferenceSession, Tensor };

/** onnxruntime execution providers a caller may ask for; the CPU (or WASM) one is always the fallback. */
export type ExecutionProvider = 'cpu' | 'cuda' | 'webgpu' | 'wasm' | 'dml' | 'coreml';

/** Kernels for int8 linear layers (graph-context's `int8Kernel`). */
export type Int8Kernel = 'dq-int8' | 'nbits8';

export interface SessionOptions {
  /** intra-op threads (default: onnxruntime's choice, all cores) */
  threads?: number;
  /** execution providers in order of preference */
  executionProviders?: ExecutionProvider[];
  /**
   * onnxruntime's memory-pattern planner (default on). Its block for a run's intermediates comes on
   * top of the arena chunks the first run used, doubling a session's working memory; training
   * turns it off (measured: same speed once the arena is warm, half the memory).
   */
  memoryPattern?: boolean;
}

/** Element types the core feeds and fetches. */
export type TensorType = 'float32' | 'float16' | 'int64' | 'int32' | 'uint32' | 'uint8' | 'bool';
export type TensorArray = Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint32Array | Uint8Array;

/** Random access to the bytes of a file: a path on disk (Node) or a URL read by Range requests (web). */
export interface ByteSource {
  /** how the source is named in error messages */
  readonly name: string;
  readonly size: number;
  /** exactly `length` bytes from `offset` (a short read is an error) */
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface DecodeImageOptions {
  /** largest width × height accepted, checked from the header before decoding */
  maxPixels?: number;
  /** how to name the input in error messages */
  name?: string;
}

export interface Runtime {
  readonly name: 'node' | 'web';
  /** onnxruntime's version, for `info()` */
  readonly onnxruntimeVersion: string;
  /** an onnxruntime tensor over `data` (no copy) */
  tensor(type: TensorType, data: TensorArray, dims: readonly number[]): Tensor;
  /** a session on a serialized graph, or on a graph file the runtime opens by name (external data beside it) */
  createSession(model: Uint8Array | string, opts: SessionOptions): Promise<InferenceSession>;
  /** a session on a graph built in memory (Node stages large graphs through a temporary folder) */
  sessionOnGraph(g: GraphBuilder, opts: SessionOptions): Promise<InferenceSession>;
  /** random access to a file's bytes; only a regular file (Node refuses devices, FIFOs and folders) */
  openBytes(location: string): Promise<ByteSource>;
  /** image file bytes → 8-bit RGB, as the official code's `PIL.Image.open(f).convert('RGB')` */
  decodeImage(bytes: Uint8Array, opts?: DecodeImageOptions): Promise<RgbImage>;
  /** lossless PNG of an RGB image */
  encodePng(image: RgbImage): Promise<Uint8Array>;
  /**
   * The int8 linear kernel this runtime runs fastest on these execution providers, when it is not
   * the model layer's default (block-wise MatMulNBits, fastest on onnxruntime-node).
   */
  int8Kernel?(executionProviders: readonly ExecutionProvider[] | undefined): Int8Kernel | undefined;
}
