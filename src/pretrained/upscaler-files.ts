/**
 * Where the Real-ESRGAN weights come from: `sberbank-ai/Real-ESRGAN` on the Hugging Face hub
 * (the files ruDALL-E's `get_realesrgan` downloads), fetched into the hub cache on first use with
 * the same settings and offline rules as the model files.
 */
import { throwIfAborted } from '../errors.js';
import { downloadFile, type DownloadProgress, type HubOptions } from '../hub/index.js';
import type { LoadProgress } from '../load-options.js';
import type { HubFile } from '../presets.js';
import { checkScale, type UpscaleScale } from '../upscale/config.js';
import type { UpscalerWeights } from '../upscale/upscaler.js';

export const REALESRGAN_REPO = 'sberbank-ai/Real-ESRGAN';

/** `RealESRGAN_x{scale}.pth` in the Real-ESRGAN repo. */
export function realEsrganFile(scale: UpscaleScale): HubFile {
  return { repo: REALESRGAN_REPO, file: `RealESRGAN_x${checkScale(scale)}.pth` };
}

export interface UpscalerSourceOptions extends HubOptions {
  /** revision of the Real-ESRGAN repo (default main) */
  revision?: string;
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
}

/** The local path of `RealESRGAN_x{scale}.pth`: from the hub cache, else downloaded (OfflineError when offline and missing). */
export async function fetchRealEsrganWeights(scale: UpscaleScale, opts: UpscalerSourceOptions = {}): Promise<string> {
  const { repo, file } = realEsrganFile(scale);
  throwIfAborted(opts.signal);
  return downloadFile({
    repo, path: file, revision: opts.revision, cacheDir: opts.cacheDir, endpoint: opts.endpoint, token: opts.token, offline: opts.offline,
    signal: opts.signal,
    onProgress: (p: DownloadProgress) => p.fromCache || opts.onProgress?.({
      stage: 'download', file: `${p.repo}/${p.file}`, loaded: p.loaded, total: p.total, bytesPerSecond: p.bytesPerSecond, etaSeconds: p.etaSeconds,
    }),
  });
}

/** A `SuperResolution` weight locator over the hub: `new SuperResolution({ weights: hubUpscalerWeights({ cacheDir }) })`. */
export function hubUpscalerWeights(opts: Omit<UpscalerSourceOptions, 'signal'> = {}): UpscalerWeights {
  return (scale, ctl) => fetchRealEsrganWeights(scale, { ...opts, signal: ctl.signal });
}
