/**
 * One entry point for reading weights: the format is recognised from the file's first bytes
 * (zip → torch checkpoint incl. Lightning, pickle → legacy torch, refused; JSON header → safetensors).
 */
import { CheckpointError } from '../errors.js';
import { openRegularFile } from './files.js';
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

/** Opens a checkpoint for streaming access; close it when done. */
export async function openCheckpoint(path: string, opts: OpenOptions = {}): Promise<CheckpointReader> {
  const format = await detectFormat(path);
  return format === 'safetensors' ? SafetensorsFile.open(path) : TorchCheckpoint.open(path, opts);
}

/** Reads every tensor of a checkpoint (a Lightning checkpoint's `state_dict`) into memory. */
export async function loadStateDict(path: string, opts: ReadOptions & OpenOptions = {}): Promise<StateDict> {
  const sd: StateDict = new Map();
  for await (const [key, t] of iterateTensors(path, opts)) sd.set(key, t);
  return sd;
}

/** Yields a checkpoint's tensors one by one (file order), holding at most one storage besides the one yielded. */
export async function* iterateTensors(path: string, opts: ReadOptions & OpenOptions = {}): AsyncGenerator<[string, HostTensor]> {
  const reader = await openCheckpoint(path, opts);
  try {
    yield* reader.iterate(opts);
  } finally {
    await reader.close();
  }
}

/** Sniffs the format; legacy torch and raw pickles go to the torch reader, which explains the refusal. */
async function detectFormat(path: string): Promise<CheckpointFormat> {
  const head = Buffer.alloc(9);
  let n: number;
  try {
    const { fh } = await openRegularFile(path); // a device, FIFO or folder is no checkpoint
    try {
      n = (await fh.read(head, 0, head.length, 0)).bytesRead;
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw new CheckpointError(`${path}: cannot open: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (n >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'torch-zip'; // "PK\x03\x04"
  // Before the pickle check: a header length's low byte may well be 0x80.
  if (n === 9 && head[8] === 0x7b) return 'safetensors'; // u64 length then '{'
  if (n >= 1 && head[0] === 0x80) return 'torch-zip';
  throw new CheckpointError(`${path}: unrecognised checkpoint format (expected a torch zip checkpoint or safetensors)`);
}
