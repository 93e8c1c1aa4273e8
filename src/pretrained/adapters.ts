/**
 * LoRA adapters on Node: a PEFT adapter folder (`adapter_config.json` + `adapter_model.safetensors`
 * or `adapter_model.bin`) or a hub repo holding one, downloaded into the hub cache like models,
 * read, checked against the model, and fingerprinted (the converted-graph cache keys merged
 * models by base + adapters).
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, throwIfAborted } from '../errors.js';
import { DownloadError, downloadFile, type DownloadProgress } from '../hub/index.js';
import { loadStateDict } from '../io/checkpoint.js';
import { openRegularFile, readBoundedFile } from '../io/files.js';
import { hashFile } from '../io/hash.js';
import type { ModelSourceOptions } from '../load-options.js';
import type { RudolphConfig } from '../model/config.js';
import { adapterFromPeft, type LoraAdapterWeights } from '../model/lora.js';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = ['adapter_model.safetensors', 'adapter_model.bin'] as const;
/** An adapter_config.json is a few hundred bytes; anything near this is not one. */
const MAX_ADAPTER_CONFIG_BYTES = 1 << 20;

/** Where an adapter's two files are, and a fingerprint of their contents. */
export interface AdapterFiles {
  /** as given: a folder or a repo id */
  source: string;
  config: string;
  weights: string;
  /** sha256 over both files */
  sha256: string;
}

const isRepoId = (s: string) => /^[\w.-]+\/[\w.-]+$/.test(s);

/** Finds (or downloads) an adapter's files. */
export async function fetchAdapterFiles(source: string, opts: ModelSourceOptions = {}): Promise<AdapterFiles> {
  if (typeof source !== 'string' || source.trim() === '') throw new ConfigError('adapter: give a folder with adapter_config.json or a hub repo id');
  let config: string, weights: string;
  if (existsSync(source) && statSync(source).isDirectory()) {
    config = path.join(source, ADAPTER_CONFIG);
    if (!existsSync(config)) throw new ConfigError(`adapter ${source}: no ${ADAPTER_CONFIG} in the folder (a PEFT LoRA adapter holds ${ADAPTER_CONFIG} and ${ADAPTER_WEIGHTS[0]})`);
    const found = ADAPTER_WEIGHTS.map((f) => path.join(source, f)).find((f) => existsSync(f));
    if (!found) throw new ConfigError(`adapter ${source}: none of ${ADAPTER_WEIGHTS.join(', ')} in the folder`);
    weights = found;
  } else if (isRepoId(source)) {
    const download = (file: string) => {
      throwIfAborted(opts.signal);
      return downloadFile({
        cacheDir: opts.cacheDir, endpoint: opts.endpoint, token: opts.token, offline: opts.offline, signal: opts.signal, repo: source, path: file,
        onProgress: (p: DownloadProgress) => p.fromCache || opts.onProgress?.({ stage: 'download', file: `${p.repo}/${p.file}`, loaded: p.loaded, total: p.total, bytesPerSecond: p.bytesPerSecond, etaSeconds: p.etaSeconds }),
      });
    };
    config = await download(ADAPTER_CONFIG);
    let last: unknown;
    let hit: string | null = null;
    for (const f of ADAPTER_WEIGHTS) {
      try {
        hit = await download(f);
        break;
      } catch (e) {
        if (!(e instanceof DownloadError && e.status === 404)) throw e;
        last = e;
      }
    }
    if (!hit) throw new ConfigError(`adapter ${source}: the repo has none of ${ADAPTER_WEIGHTS.join(', ')} (${(last as Error).message})`);
    weights = hit;
  } else {
    throw new ConfigError(`adapter "${source}" is neither a folder with ${ADAPTER_CONFIG} nor a hub repo id (org/name)`);
  }
  // both must be regular files (a path naming a FIFO or /dev/urandom would never end), hashed in chunks
  const hash = createHash('sha256');
  for (const f of [config, weights]) {
    try {
      await (await openRegularFile(f)).fh.close();
    } catch (e) {
      throw new ConfigError(`adapter ${source}: cannot read ${f}: ${(e as Error).message}`);
    }
    hash.update(await hashFile(f, 'sha256')).update('\0');
  }
  return { source, config, weights, sha256: hash.digest('hex') };
}

/** Reads an adapter and checks it against the model it is meant for. */
export async function loadAdapter(cfg: RudolphConfig, files: AdapterFiles): Promise<LoraAdapterWeights> {
  let json: unknown;
  try {
    json = JSON.parse((await readBoundedFile(files.config, MAX_ADAPTER_CONFIG_BYTES)).toString('utf8'));
  } catch (e) {
    throw new ConfigError(`adapter ${files.source}: ${ADAPTER_CONFIG} is not readable JSON: ${(e as Error).message}`);
  }
  const sd = await loadStateDict(files.weights);
  return adapterFromPeft(cfg, json, sd, `adapter ${files.source}`);
}

/** Every adapter of a list, fetched and read, in order. */
export async function loadAdapters(cfg: RudolphConfig, sources: readonly string[], opts: ModelSourceOptions = {}): Promise<{ files: AdapterFiles[]; adapters: LoraAdapterWeights[] }> {
  const files: AdapterFiles[] = [];
  const adapters: LoraAdapterWeights[] = [];
  for (const s of sources) {
    const f = await fetchAdapterFiles(s, opts);
    files.push(f);
    adapters.push(await loadAdapter(cfg, f));
  }
  return { files, adapters };
}
