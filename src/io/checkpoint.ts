/**
 * One entry point for reading weights: the format is recognised from the file's first bytes
 * (zip → torch checkpoint incl. Lightning, pickle → legacy torch, refused; JSON header → safetensors).
 * Locations are opened through the runtime: a path on Node (regular files only), a URL read by
 * Range requests in a browser; an open ByteSource works too.
 */
import { CheckpointError } from '../errors.js';
import { runtime } from '../runtime/current.js';
import type { ByteSource } from '../runtime/types.js';
import type { HostTensor, StateDict } from '../tensor.js';
import { SafetensorsFile } from './safetensors.js';
import { TorchCheckpoint, type OpenOptions } from './torch-zip.js';
import type { ReadOptions, TensorSource } from './tensor-source.js';

export type { ReadOptions, TensorInfo, TensorSource } from './tensor-source.js';
export type { OpenOptions } from './torch-zip.js';

type CheckpointFormat = 'torch-zip' | 'safetensors';

/** An open checkpoint of either format: list, inspect and read tensors one at a time. */
export interface CheckpointReader extends TensorSource {
  readonly path: string;
  iterate(opts?: ReadOptions): AsyncGenerator<[string, HostTensor]>;
  close(): Promise<void>;
}

/** Opens a checkpoint for streaming access; close it when done (a given ByteSource is closed with it). */
export async function openCheckpoint(location: string | ByteSource, opts: OpenOptions = {}): Promise<CheckpointReader> {
  const source = typeof location === 'string' ? await openLocation(location) : location;
  let format: CheckpointFormat;
  try {
    format = await detectFormat(source);
  } catch (e) {
    await source.close();
    throw e;
  }
  return format === 'safetensors' ? SafetensorsFile.open(source) : TorchCheckpoint.open(source, opts);
}

/** Reads every tensor of a checkpoint (a Lightning checkpoint's `state_dict`) into memory. */
export async function loadStateDict(location: string | ByteSource, opts: ReadOptions & OpenOptions = {}): Promise<StateDict> {
  const sd: StateDict = new Map();
  for await (const [key, t] of iterateTensors(location, opts)) sd.set(key, t);
  return sd;
}

/** Yields a checkpoint's tensors one by one (file order), holding at most one storage besides the one yielded. */
export async function* iterateTensors(location: string | ByteSource, opts: ReadOptions & OpenOptions = {}): AsyncGenerator<[string, HostTensor]> {
  const reader = await openCheckpoint(location, opts);
  try {
    yield* reader.iterate(opts);
  } finally {
    await reader.close();
  }
}

async function openLocation(location: string): Promise<ByteSource> {
  try {
    return await runtime().openBytes(location);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`${location}: cannot open: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** Sniffs the format; legacy torch and raw pickles go to the torch reader, which explains the refusal. */
async function detectFormat(source: ByteSource): Promise<CheckpointFormat> {
  const head = await source.read(0, Math.min(9, source.size));
  const n = head.length;
  const u32 = n >= 4 ? new DataView(head.buffer, head.byteOffset, n).getUint32(0, true) : 0;
  if (n >= 4 && u32 === 0x04034b50) return 'torch-zip'; // "PK\x03\x04"
  // Before the pickle check: a header length's low byte may well be 0x80.
  if (n === 9 && head[8] === 0x7b) return 'safetensors'; // u64 length then '{'
  if (n >= 1 && head[0] === 0x80) return 'torch-zip';
  throw new CheckpointError(`${source.name}: unrecognised checkpoint format (expected a torch zip checkpoint or safetensors)`);
}
