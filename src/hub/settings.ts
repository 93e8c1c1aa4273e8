import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HUB_URL, getHFHubCachePath } from '@huggingface/hub';
import { InputError } from '../errors.js';

/** Options every hub function accepts; each falls back to the environment like huggingface_hub. */
export interface HubOptions {
  /** Hub cache folder (default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Hub base URL (default: $HF_ENDPOINT, else https://huggingface.co). */
  endpoint?: string;
  /** Access token (default: $HF_TOKEN, else the token file written by `huggingface-cli login`). */
  token?: string;
  /** Never touch the network (default: $HF_HUB_OFFLINE is 1/true/yes/on). */
  offline?: boolean;
}

export interface HubSettings {
  cacheDir: string;
  endpoint: string;
  token: string | undefined;
  offline: boolean;
  /** Why we are offline, for error messages ('HF_HUB_OFFLINE=1 is set', 'offline mode was requested'). */
  offlineReason: string | undefined;
}

/** huggingface_hub's `_is_true`: the env values it treats as "on". */
function envIsTrue(value: string | undefined): boolean {
  return value !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(value.trim().toUpperCase());
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

function tokenFromFile(): string | undefined {
  const hfHome = process.env.HF_HOME ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface');
  const tokenPath = process.env.HF_TOKEN_PATH ?? path.join(expandHome(hfHome), 'token');
  try {
    return readFileSync(expandHome(tokenPath), 'utf8').trim() || undefined;
  } catch {
    return undefined; // no stored login: anonymous access
  }
}

export function resolveHubSettings(options: HubOptions = {}): HubSettings {
  const cacheDir = path.resolve(expandHome(options.cacheDir ?? getHFHubCachePath()));

  const rawEndpoint = options.endpoint ?? process.env.HF_ENDPOINT ?? HUB_URL;
  let endpointUrl: URL;
  try {
    endpointUrl = new URL(rawEndpoint);
  } catch {
    throw new InputError(`hub endpoint "${rawEndpoint}" is not a URL (check HF_ENDPOINT or the endpoint option)`);
  }
  if (endpointUrl.protocol !== 'http:' && endpointUrl.protocol !== 'https:') {
    throw new InputError(`hub endpoint "${rawEndpoint}" must be an http(s) URL`);
  }
  const endpoint = rawEndpoint.replace(/\/+$/, '');

  const token = options.token ?? (process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN || tokenFromFile());

  let offlineReason: string | undefined;
  if (options.offline === true) offlineReason = 'offline mode was requested';
  else if (options.offline === undefined && envIsTrue(process.env.HF_HUB_OFFLINE)) offlineReason = `HF_HUB_OFFLINE=${process.env.HF_HUB_OFFLINE} is set`;

  return { cacheDir, endpoint, token: token || undefined, offline: offlineReason !== undefined, offlineReason };
}

/** How long and how often the hub is tried (huggingface_hub's timeouts, plus our retry bounds). */
export interface NetworkOptions {
  /**
   * Connect + response-headers timeout and idle timeout (no body data), per request, in ms
   * (default: $HF_HUB_DOWNLOAD_TIMEOUT seconds, else 10 s; $HF_HUB_ETAG_TIMEOUT for the metadata request).
   */
  timeoutMs?: number;
  /** Failed attempts in a row that bring no new bytes before giving up (default 5). */
  retries?: number;
  /** Retries of one file in all, progress or not, before giving up (default 20). */
  retryBudget?: number;
}

export interface NetworkSettings {
  /** For the HEAD that resolves a file's commit, etag and size. */
  metadataTimeoutMs: number;
  /** For each body request: until its headers arrive, then between chunks. */
  downloadTimeoutMs: number;
  retries: number;
  retryBudget: number;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_RETRIES = 5;
export const DEFAULT_RETRY_BUDGET = 20;
/** The longest Retry-After (429/503) we wait for; a server asking for more gets an error instead. */
export const MAX_RETRY_AFTER_MS = 60_000;

/** A timeout in seconds from the environment, as huggingface_hub reads it; undefined when unset. */
function envSeconds(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0) throw new InputError(`${name} must be a positive number of seconds, got "${raw}"`);
  return s * 1000;
}

function countOption(v: number | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v < 0) throw new InputError(`${name} must be an integer ≥ 0, got ${v}`);
  return v;
}

export function resolveNetworkSettings(options: NetworkOptions = {}): NetworkSettings {
  if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
    throw new InputError(`timeoutMs must be a positive number, got ${options.timeoutMs}`);
  }
  const download = options.timeoutMs ?? envSeconds('HF_HUB_DOWNLOAD_TIMEOUT') ?? DEFAULT_TIMEOUT_MS;
  const metadata = options.timeoutMs ?? envSeconds('HF_HUB_ETAG_TIMEOUT') ?? download;
  return {
    metadataTimeoutMs: metadata,
    downloadTimeoutMs: download,
    retries: countOption(options.retries, 'retries', DEFAULT_RETRIES),
    retryBudget: countOption(options.retryBudget, 'retryBudget', DEFAULT_RETRY_BUDGET),
  };
}
