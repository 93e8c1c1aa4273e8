/**
 * `Rudolph.fromPretrained` on Node: resolve and download the model's files into the hub cache,
 * open the converted graph (converting the checkpoint once), load the tokenizer and the VQGAN.
 */
import path from 'node:path';
import { InputError, throwIfAborted } from '../errors.js';
import type { FromPretrainedOptions, LoadedModel, RudolphInfo } from '../load-options.js';
import { PRESET_NAMES } from '../presets.js';
import { runtime } from '../runtime/current.js';
import type { Vqgan } from '../vqgan/vqgan-model.js';
import { loadAdapters } from './adapters.js';
import { openConvertedModel } from './converted-cache.js';
import { resolveModelFiles } from './model-files.js';
import { openUpscaler } from './upscaler-files.js';
import { loadVqgan } from './vqgan-files.js';

export async function loadPretrained(source: string, opts: FromPretrainedOptions): Promise<LoadedModel> {
  const batchSize = opts.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize must be a positive integer, got ${batchSize}`);
  if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 1)) throw new InputError(`threads must be a positive integer, got ${opts.threads}`);
  const { cfg, weightsFile, tokenizer, tokenizerFile, vqganFile, cacheDir } = await resolveModelFiles(source, opts);
  throwIfAborted(opts.signal);
  const session = { threads: opts.threads, executionProviders: opts.executionProviders, precision: opts.precision };
  const root = path.join(cacheDir, '.rudolph-ts', 'converted');
  const adapters = await loadAdapters(cfg, opts.adapters ?? [], { ...opts, cacheDir });
  throwIfAborted(opts.signal);
  const { model, dir } = await openConvertedModel(cfg, weightsFile, {
    ...session, root, adapters,
    onStage: (stage, detail) => opts.onProgress?.({ stage: stage === 'convert' ? 'convert' : 'load', file: detail }),
  });
  let vqgan: Vqgan | undefined;
  try {
    if (vqganFile) {
      opts.onProgress?.({ stage: 'load', file: vqganFile });
      vqgan = await loadVqgan(vqganFile, { threads: opts.threads, executionProviders: opts.executionProviders });
      vqgan.checkFits(cfg.imageVocab, vqganFile);
    }
  } catch (e) {
    await vqgan?.release();
    await model.release();
    throw e;
  }
  const info: RudolphInfo = {
    source, config: cfg.params, specialTokens: cfg.specialTokens, presets: PRESET_NAMES,
    files: { weights: weightsFile, tokenizer: tokenizerFile, vqgan: vqganFile, converted: dir, adapters: adapters.files.map((f) => f.source) },
    cacheDir,
    runtime: {
      name: runtime().name, onnxruntime: runtime().onnxruntimeVersion,
      executionProviders: [...(opts.executionProviders ?? []), 'cpu'], threads: opts.threads ?? 'auto', precision: opts.precision ?? 'fp32',
    },
    batchSize,
  };
  // nothing is read or downloaded here: each scale's weights on its first use
  const upscaler = opts.upscaler === false ? undefined : openUpscaler({
    folder: opts.upscaler, cacheDir, endpoint: opts.endpoint, token: opts.token, offline: opts.offline,
    threads: opts.threads, executionProviders: opts.executionProviders,
  });
  return { model, cfg, tokenizer, vqgan, upscaler, batchSize, info };
}
