/**
 * Small random-weight models for end-to-end tests: a RUDOLPH folder whose text vocabulary fits
 * ../shared/tokenizer/bpe-512.model and whose image side matches the golden tiny VQGAN
 * (64 codes, ×8), written in the official torch format.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { saveTorchCheckpoint } from '../src/io/torch-writer.js';
import { configToJson, makeConfig, type RudolphConfig, type RudolphParams } from '../src/model/config.js';
import { parameterSpecs, randomWeights } from '../src/model/weights.js';
import type { StateDict } from '../src/tensor.js';
import type { UpscaleScale } from '../src/upscale/index.js';
import { GOLDEN_DIR, REPO_ROOT, TOKENIZER_DIR } from './helpers.js';

export const SMALL_PARAMS: RudolphParams = {
  num_layers: 4, hidden_size: 64, num_attention_heads: 4,
  l_text_seq_length: 16, image_tokens_per_dim: 4, r_text_seq_length: 16,
  kernel_size: 3, last_kernel_size: 5,
  vocab_size: 512 + 16, image_vocab_size: 64, text_special_tokens: 6, image_special_tokens: 2,
  embedding_dropout_prob: 0.1, attention_dropout_prob: 0.1, output_dropout_prob: 0.1,
  cogview_sandwich_layernorm: true, cogview_pb_relax: true,
};

/** The golden upscale data: tiny Real-ESRGAN checkpoints of each scale in the official format, with the official outputs. */
export const UPSCALE_DATA = path.join(REPO_ROOT, 'test', 'data', 'golden-upscale');
export const TINY_UPSCALERS: Record<UpscaleScale, string> = {
  2: path.join(UPSCALE_DATA, 'realesrgan-x2-tiny', 'RealESRGAN_x2.pth'),
  4: path.join(UPSCALE_DATA, 'realesrgan-x4-tiny', 'RealESRGAN_x4.pth'),
  8: path.join(UPSCALE_DATA, 'realesrgan-x8-tiny', 'RealESRGAN_x8.pth'),
};
/** Their size (the official network's is 64 features, 23 blocks, growth 32). */
export const TINY_UPSCALER_SIZE = { numFeat: 16, numBlock: 2, numGrowCh: 8, numInCh: 3, numOutCh: 3 };

export const SMALL_TOKENIZER = path.join(TOKENIZER_DIR, 'bpe-512.model');
export const TINY_VQGAN_DIR = path.join(GOLDEN_DIR, 'vqgan-tiny');

/** Writes config.json + pytorch_model.bin of a seeded random small model into `dir`. */
export async function writeSmallModel(dir: string, seed = 3, params: RudolphParams = SMALL_PARAMS): Promise<RudolphConfig> {
  const cfg = makeConfig(params);
  await fsp.mkdir(dir, { recursive: true });
  const weights = randomWeights(cfg, seed);
  const sd: StateDict = new Map();
  for (const [name, data] of weights) sd.set(name, { dtype: 'float32', shape: shapeOf(cfg, name), data });
  await saveTorchCheckpoint(path.join(dir, 'pytorch_model.bin'), sd);
  await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify(configToJson(cfg), null, 1));
  return cfg;
}

function shapeOf(cfg: RudolphConfig, name: string): number[] {
  const spec = parameterSpecs(cfg).find((s) => s.name === name);
  if (!spec) throw new Error(`no parameter ${name}`);
  return spec.shape;
}

/** A fresh temp folder removed by the returned cleanup. */
export async function tempDir(prefix = 'rudolph-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fsp.rm(dir, { recursive: true, force: true }) };
}
