/** A built graph written to disk: `<dir>/<model>.onnx` with its weights in one external file beside it. */
import { createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { GraphBuilder } from '../../onnx/graph.js';

/**
 * Writes the graph and its external weights file (lazy weights loaded one at a time). Not atomic
 * by itself: callers that publish the folder write it through `writeFolderAtomically`.
 */
export async function saveGraph(g: GraphBuilder, dir: string, modelFile = 'model.onnx', weightsFile = 'weights.bin'): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const out = createWriteStream(path.join(dir, weightsFile));
  const write = (b: Uint8Array) => new Promise<void>((resolve, reject) => {
    out.write(b, (err) => (err ? reject(err) : resolve()));
  });
  try {
    const model = await g.serialize(write, weightsFile);
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await fsp.writeFile(path.join(dir, modelFile), model);
  } catch (e) {
    out.destroy();
    throw e;
  }
}
