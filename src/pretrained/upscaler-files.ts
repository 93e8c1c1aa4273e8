/**
 * Where the Real-ESRGAN weights come from: `sberbank-ai/Real-ESRGAN` on the Hugging Face hub
 * (the files ruDALL-E's `get_realesrgan` downloads), fetched into the hub cache on first use with
 * the same settings and offline rules as the model files.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, throwIfAborted } from '../errors.js';
import { downloadFile, type DownloadProgress, type HubOptions } from '../hub/index.js';
import type { LoadProgress } from '../load-options.js';
import type { HubFile } from '../presets.js';
import { checkScale, type UpscaleScale } from '../upscale/config.js';
import { SuperResolution, type UpscalerWeights } from '../upscale/upscaler.js';
import type { ExecutionProvider } from '../runtime/types.js';
import type { Progress } from '../util/progress.js';

export const REALESRGAN_REPO = 'sberbank-ai/Real-ESRGAN';

/** `RealESRGAN_x{scale}.pth` in the Real-ESRGAN repo. */
export function realEsrganFile(scale: UpscaleScale): HubFile {
  return { repo: REALESRGAN_REPO, file: `RealESRGAN_x${checkScale(scale)}.pth` };
}

export interface UpscalerSourceOptions extends HubOptions {
  /** revision of the Real-ESRGAN repo (default main) */
  revision?: string;
  onProgress?: (p: LoadProgress) => void;
  /** the download as task progress (stage 'download', bytes) */
  onTaskProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** The local path of `RealESRGAN_x{scale}.pth`: from the hub cache, else downloaded (OfflineError when offline and missing). */
export async function fetchRealEsrganWeights(scale: UpscaleScale, opts: UpscalerSourceOptions = {}): Promise<string> {
  const { repo, file } = realEsrganFile(scale);
  throwIfAborted(opts.signal);
  return downloadFile({
    repo, path: file, revision: opts.revision, cacheDir: opts.cacheDir, endpoint: opts.endpoint, token: opts.token, offline: opts.offline,
    signal: opts.signal,
    onProgress: (p: DownloadProgress) => {
      if (p.fromCache) return;
      opts.onProgress?.({
        stage: 'download', file: `${p.repo}/${p.file}`, loaded: p.loaded, total: p.total, bytesPerSecond: p.bytesPerSecond, etaSeconds: p.etaSeconds,
      });
      opts.onTaskProgress?.({ task: 'upscale', stage: `download ${p.file}`, done: p.loaded, total: p.total ?? p.loaded });
    },
  });
}

/** A `SuperResolution` weight locator over the hub: `new SuperResolution({ weights: hubUpscalerWeights({ cacheDir }) })`. */
export function hubUpscalerWeights(opts: Omit<UpscalerSourceOptions, 'signal' | 'onTaskProgress'> = {}): UpscalerWeights {
  return (scale, ctl) => fetchRealEsrganWeights(scale, { ...opts, signal: ctl.signal, onTaskProgress: ctl.onProgress });
}

/** A weight locator over a local folder holding `RealESRGAN_x{2,4,8}.pth` (ConfigError naming the missing file). */
export function folderUpscalerWeights(dir: string): UpscalerWeights {
  return async (scale) => {
    const file = path.join(dir, realEsrganFile(scale).file);
    if (!existsSync(file)) throw new ConfigError(`upscaler: no ${path.basename(file)} in ${dir} (the folder needs RealESRGAN_x${scale}.pth for ×${scale})`);
    return file;
  };
}

export interface OpenUpscalerOptions extends Omit<UpscalerSourceOptions, 'signal' | 'onTaskProgress'> {
  /** a folder holding RealESRGAN_x{2,4,8}.pth (default: the hub's sberbank-ai/Real-ESRGAN, each scale on first use) */
  folder?: string;
  threads?: number;
  executionProviders?: ExecutionProvider[];
}

/**
 * Super-resolution as `fromPretrained` and the CLI set it up: nothing is read or downloaded until
 * a scale is first used; the network size is read off the weights (the hub's files are the
 * official full size; other RRDBNet files work too).
 */
export function openUpscaler(opts: OpenUpscalerOptions = {}): SuperResolution {
  const { folder, threads, executionProviders, ...hub } = opts;
  return new SuperResolution({
    weights: folder !== undefined ? folderUpscalerWeights(folder) : hubUpscalerWeights(hub),
    config: 'fromWeights', threads, executionProviders,
  });
}
