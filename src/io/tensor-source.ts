/**
 * What checkpoint readers and writers share: the tensor-by-tensor source interface (so multi-GB
 * files can be converted without holding them whole), byte access to a HostTensor, atomic writes.
 */
import { CheckpointError } from '../errors.js';
import { BYTES_PER_ELEMENT, numel, shapeToString, toFloat32 } from '../tensor.js';
import type { DType, HostTensor, StateDict, TensorData } from '../tensor.js';

export interface TensorInfo {
  dtype: DType;
  shape: number[];
}

export interface ReadOptions {
  /** Convert float16 / bfloat16 / float64 tensors to float32 (integer and bool tensors are kept). */
  toFloat32?: boolean;
}

/** Named tensors that can be listed without reading them and then read one at a time. */
export interface TensorSource {
  keys(): string[];
  info(key: string): TensorInfo;
  read(key: string, opts?: ReadOptions): Promise<HostTensor>;
}

/** A StateDict seen as a TensorSource (reads are free). */
export function asTensorSource(source: StateDict | TensorSource): TensorSource {
  if (!(source instanceof Map)) return source;
  return {
    keys: () => [...source.keys()],
    info: (key) => {
      const t = source.get(key);
      if (!t) throw new CheckpointError(`no tensor "${key}" in the state dict`);
      return { dtype: t.dtype, shape: [...t.shape] };
    },
    read: async (key) => {
      const t = source.get(key);
      if (!t) throw new CheckpointError(`no tensor "${key}" in the state dict`);
      return t;
    },
  };
}

type ArrayClass = { readonly name: string; new (n: number): object };
const ARRAY_FOR_DTYPE: Readonly<Record<DType, ArrayClass>> = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, bfloat16: Uint16Array,
  int64: BigInt64Array, int32: Int32Array, int16: Int16Array, int8: Int8Array,
  uint8: Uint8Array, bool: Uint8Array,
};

/**
 * The raw little-endian bytes of a tensor about to be written, after checking that it is what
 * `expected` announced (a writer has already committed to dtype and shape in its header).
 */
export function tensorBytes(file: string, key: string, t: HostTensor, expected: TensorInfo): Uint8Array {
  const where = `${file}: tensor "${key}"`;
  if (t.dtype !== expected.dtype || shapeToString(t.shape) !== shapeToString(expected.shape)) {
    throw new CheckpointError(`${where} is ${t.dtype} ${shapeToString(t.shape)}, announced as ${expected.dtype} ${shapeToString(expected.shape)}`);
  }
  if (!(t.data instanceof ARRAY_FOR_DTYPE[t.dtype])) {
    throw new CheckpointError(`${where}: ${t.dtype} data must be a ${ARRAY_FOR_DTYPE[t.dtype].name}, got ${t.data.constructor.name}`);
  }
  if (t.data.length !== numel(t.shape)) {
    throw new CheckpointError(`${where}: ${t.data.length} values for shape ${shapeToString(t.shape)}`);
  }
  return new Uint8Array(t.data.buffer, t.data.byteOffset, numel(t.shape) * BYTES_PER_ELEMENT[t.dtype]);
}


/** The HostTensor typed array for `n` elements of `dtype` over `bytes` (must start aligned). */
export function typedView(dtype: DType, bytes: Uint8Array, n: number): TensorData {
  const { buffer, byteOffset } = bytes;
  switch (dtype) {
    case 'float32': return new Float32Array(buffer, byteOffset, n);
    case 'float64': return new Float64Array(buffer, byteOffset, n);
    case 'float16': case 'bfloat16': return new Uint16Array(buffer, byteOffset, n);
    case 'int64': return new BigInt64Array(buffer, byteOffset, n);
    case 'int32': return new Int32Array(buffer, byteOffset, n);
    case 'int16': return new Int16Array(buffer, byteOffset, n);
    case 'int8': return new Int8Array(buffer, byteOffset, n);
    case 'uint8': case 'bool': return new Uint8Array(buffer, byteOffset, n);
  }
}

/** Applies ReadOptions to a freshly read tensor. */
export function applyReadOptions(t: HostTensor, opts: ReadOptions): HostTensor {
  if (opts.toFloat32 && (t.dtype === 'float16' || t.dtype === 'bfloat16' || t.dtype === 'float64')) {
    return { dtype: 'float32', shape: t.shape, data: toFloat32(t) };
  }
  return t;
}
