/**
 * Where a model's pieces come from: a preset name, a model folder or a hub repo id resolved into
 * its config, checkpoint, tokenizer and VQGAN files, downloading what is not cached. One place
 * for `fromPretrained`, fine-tuning and `rudolph download`. When offline, every missing file is
 * named in one message.
 */
import { existsSync, promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, RudolphError, throwIfAborted } from '../errors.js';
import { DownloadError, downloadFile, type DownloadProgress, OfflineError, resolveCachedFile, resolveHubSettings } from '../hub/index.js';
import { offlineError } from '../hub/offline.js';
import type { LoadProgress, ModelSourceOptions } from '../load-options.js';
import type { RudolphConfig } from '../model/config.js';
import { isPresetName, presetConfig, presetList, PRESETS, TOKENIZER_FILE, VQGAN_FILE } from '../presets.js';
import type { TextTokenizer } from '../tokenizer/text-encoding.js';
import { YttmTokenizer } from '../tokenizer/yttm.js';
import { findWeightsFile, readConfigFile, readFolderConfig, WEIGHT_FILES } from './model-dir.js';

/** The files of a model, downloaded or found (nothing loaded yet). */
export interface ModelFileLocations {
  cfg: RudolphConfig;
  /** the checkpoint (pytorch_model.bin or model.safetensors) */
  weightsFile: string;
  /** a bpe.model path, or the tokenizer object the caller gave */
  tokenizer: string | TextTokenizer;
  vqganFile: string | null;
  cacheDir: string;
}

export interface ModelFiles extends Omit<ModelFileLocations, 'tokenizer'> {
  tokenizer: TextTokenizer;
  /** the bpe.model used, or 'custom' for a tokenizer object */
  tokenizerFile: string;
}

const isRepoId = (s: string) => /^[\w.-]+\/[\w.-]+$/.test(s);
const VQGAN_NAMES = ['vqgan.gumbelf8-sber.model.ckpt', 'vqgan.ckpt', 'vqgan.safetensors'];

/** Downloads a file of the model's repo at the requested revision; `shared` = a repo every model shares (at main). */
type Fetch = (repo: string, file: string, shared?: boolean) => Promise<string>;
type CachedLookup = (repo: string, file: string) => Promise<string | null>;

/** Finds or downloads every file the model needs. */
export async function fetchModelFiles(source: string, opts: ModelSourceOptions = {}): Promise<ModelFileLocations> {
  if (typeof source !== 'string' || source.trim() === '') throw new ConfigError('model: give a preset name, a model folder or a hub repo id');
  const hub = resolveHubSettings({ cacheDir: opts.cacheDir, endpoint: opts.endpoint, token: opts.token, offline: opts.offline });
  const download: Fetch = async (repo, file, shared = false) => {
    throwIfAborted(opts.signal);
    return downloadFile({
      cacheDir: hub.cacheDir, endpoint: opts.endpoint, token: opts.token, offline: opts.offline, revision: shared ? undefined : opts.revision, signal: opts.signal, repo, path: file,
      timeoutMs: opts.timeoutMs, retries: opts.retries, retryBudget: opts.retryBudget,
      onProgress: (p: DownloadProgress) => p.fromCache || opts.onProgress?.({ stage: 'download', file: `${p.repo}/${p.file}`, loaded: p.loaded, total: p.total, bytesPerSecond: p.bytesPerSecond, etaSeconds: p.etaSeconds }),
    });
  };
  const cached: CachedLookup = (repo, file) => resolveCachedFile({ repo, path: file, revision: opts.revision, cacheDir: hub.cacheDir });
  // offline, keep going past a missing file so that one message names everything missing
  const missing: OfflineError[] = [];
  const attempt = async (fn: () => Promise<string>): Promise<string | null> => {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof OfflineError)) throw e;
      missing.push(e);
      return null;
    }
  };

  let cfg: RudolphConfig | null;
  let weightsFile: string | null;
  let localDir: string | null = null;
  let repo: string | null = null;
  if (isPresetName(source)) {
    cfg = presetConfig(source);
    const { checkpoint } = PRESETS[source];
    weightsFile = await attempt(() => download(checkpoint.repo, checkpoint.file));
  } else if (existsSync(source) && statSync(source).isDirectory()) {
    localDir = source;
    cfg = await readFolderConfig(source);
    weightsFile = findWeightsFile(source);
  } else if (isRepoId(source)) {
    repo = source;
    const config = await attempt(() => download(source, 'config.json'));
    cfg = config ? await readConfigFile(config) : null;
    weightsFile = await attempt(() => downloadFirst(source, [...WEIGHT_FILES], download, cached));
  } else {
    throw new ConfigError(`model "${source}" is not a preset (${presetList()}), an existing folder with config.json, or a hub repo id (org/name)`);
  }
  const tokenizer = await attempt(async () => {
    const t = await findTokenizer(opts.tokenizer, localDir, repo, download, cached);
    return typeof t === 'string' ? t : '';
  });
  const vqgan = opts.vqgan;
  const vqganFile = vqgan === false ? null : await attempt(() => findVqgan(vqgan, localDir, download));
  if (missing.length) {
    throw await offlineError(missing.flatMap((e) => e.missing), hub.cacheDir, missing[0].reason, missing[0].cause);
  }
  return {
    cfg: cfg!, weightsFile: weightsFile!, cacheDir: hub.cacheDir, vqganFile,
    tokenizer: typeof opts.tokenizer === 'object' ? opts.tokenizer : tokenizer!,
  };
}

/** `fetchModelFiles`, then the tokenizer loaded and checked against the model's vocabulary. */
export async function resolveModelFiles(source: string, opts: ModelSourceOptions = {}): Promise<ModelFiles> {
  const files = await fetchModelFiles(source, opts);
  const tokenizer = typeof files.tokenizer === 'string' ? (await YttmTokenizer.fromFile(files.tokenizer)).asTextTokenizer() : files.tokenizer;
  if (tokenizer.vocabSize > files.cfg.bpeVocab) {
    throw new ConfigError(`tokenizer has ${tokenizer.vocabSize} tokens but the model's text vocabulary holds ${files.cfg.bpeVocab}: they do not belong together`);
  }
  return { ...files, tokenizer, tokenizerFile: typeof files.tokenizer === 'string' ? files.tokenizer : 'custom' };
}

/** The first of `files` the repo has: a cached one without network, else the first the hub serves. */
async function downloadFirst(repo: string, files: string[], download: Fetch, cached: CachedLookup): Promise<string> {
  for (const f of files) {
    const hit = await cached(repo, f);
    if (hit) return hit;
  }
  let last: unknown;
  for (const f of files) {
    try {
      return await download(repo, f);
    } catch (e) {
      if (!(e instanceof DownloadError && e.status === 404)) throw e;
      last = e;
    }
  }
  throw new RudolphError('CHECKPOINT', `${repo}: none of ${files.join(', ')} found on the hub`, { cause: last });
}

async function findTokenizer(given: string | TextTokenizer | undefined, dir: string | null, repo: string | null, download: Fetch, cached: CachedLookup): Promise<string | TextTokenizer> {
  if (given !== undefined) return given;
  if (dir && existsSync(path.join(dir, 'bpe.model'))) return path.join(dir, 'bpe.model');
  if (repo) {
    // a repo's own bpe.model is optional: absent (404) or unreachable offline → the default tokenizer
    const hit = await cached(repo, 'bpe.model');
    if (hit) return hit;
    try {
      return await download(repo, 'bpe.model');
    } catch (e) {
      // a repo without its own bpe.model (404) falls back, and so does offline use: online, a repo's bpe.model is
      // always fetched with its weights, so offline it is cached whenever it exists. A refused or broken download
      // (401, 5xx, dropped connection) must not silently swap tokenizers.
      if (!((e instanceof DownloadError && e.status === 404) || e instanceof OfflineError)) throw e;
    }
  }
  return download(TOKENIZER_FILE.repo, TOKENIZER_FILE.file, true);
}

async function findVqgan(given: string | undefined, dir: string | null, download: Fetch): Promise<string> {
  const inFolder = async (folder: string): Promise<string | null> => {
    for (const name of VQGAN_NAMES) if (existsSync(path.join(folder, name))) return path.join(folder, name);
    const ckpts = (await fsp.readdir(folder)).filter((f) => f.endsWith('.ckpt'));
    return ckpts.length === 1 ? path.join(folder, ckpts[0]) : null;
  };
  if (given !== undefined) {
    if (!existsSync(given)) throw new ConfigError(`VQGAN ${given}: no such file or folder`);
    if (statSync(given).isDirectory()) {
      const found = await inFolder(given);
      if (!found) throw new ConfigError(`VQGAN folder ${given} holds none of ${VQGAN_NAMES.join(', ')}`);
      return found;
    }
    return given;
  }
  if (dir) {
    const found = await inFolder(dir);
    if (found) return found;
  }
  return download(VQGAN_FILE.repo, VQGAN_FILE.file, true);
}
