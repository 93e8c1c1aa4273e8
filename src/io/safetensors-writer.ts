/**
 * Writing safetensors files (Node): the header the reader (safetensors.ts) validates, then each
 * tensor's bytes, written atomically.
 */
import { open } from 'node:fs/promises';
import { CheckpointError } from '../errors.js';
import { BYTES_PER_ELEMENT, numel, type StateDict } from '../tensor.js';
import { writeAtomically, writeFully } from './files.js';
import { CODE_OF_DTYPE, type SafetensorsMetadata } from './safetensors.js';
import { asTensorSource, tensorBytes, type TensorSource } from './tensor-source.js';

export interface SaveSafetensorsOptions {
  metadata?: SafetensorsMetadata;
}

/**
 * Writes a safetensors file atomically. With a TensorSource the tensors are read and written one at a
 * time, so the whole state dict never has to be in memory.
 */
export async function saveSafetensors(
  path: string,
  tensors: StateDict | TensorSource,
  opts: SaveSafetensorsOptions = {},
): Promise<void> {
  const source = asTensorSource(tensors);
  const keys = source.keys();
  const infos = keys.map((k) => source.info(k));
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = { ...opts.metadata };
  let offset = 0;
  keys.forEach((key, i) => {
    if (key === '__metadata__') throw new CheckpointError(`${path}: "__metadata__" cannot be a tensor name`);
    const { dtype, shape } = infos[i];
    const size = numel(shape) * BYTES_PER_ELEMENT[dtype];
    header[key] = { dtype: CODE_OF_DTYPE[dtype], shape, data_offsets: [offset, offset + size] };
    offset += size;
  });
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad with spaces so the data section starts 8-byte aligned (as the reference writer does).
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  await writeAtomically(path, async (tmp) => {
    const fh = await open(tmp, 'wx');
    try {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      await writeFully(fh, len);
      await writeFully(fh, json);
      for (let i = 0; i < keys.length; i++) {
        const t = await source.read(keys[i]);
        await writeFully(fh, tensorBytes(path, keys[i], t, infos[i]));
      }
    } finally {
      await fh.close();
    }
  });
}
