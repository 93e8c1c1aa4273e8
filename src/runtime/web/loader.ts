/**
 * `Rudolph.fromPretrained` in a browser: the official files straight from the hub
 * (`<endpoint>/<repo>/resolve/<revision>/<file>`, endpoint configurable like HF_ENDPOINT) or from
 * a model folder URL. The checkpoint is never fetched whole: its zip directory (or safetensors
 * header) and then each tensor are read by Range requests while the graph is serialized, one
 * tensor at a time, converted (fp16 → the precision) on the way; every fetched range is kept in
 * the Cache API, so a second visit runs without a request. Progress and AbortSignal as on Node.
 */
import { ConfigError, InputError, RudolphError, throwIfAborted } from '../../errors.js';
import { openCheckpoint, type CheckpointReader } from '../../io/checkpoint.js';
import type { FromPretrainedOptions, LoadedModel, LoadProgress, RudolphInfo } from '../../load-options.js';
import { configFromJson, type RudolphConfig } from '../../model/config.js';
import type { LinearPrecision, QuantOptions } from '../../model/graph-context.js';
import { buildRudolphGraph } from '../../model/rudolph-graph.js';
import { RudolphModel, runtimeQuant } from '../../model/rudolph-model.js';
import { checkTensorInfos, parameterSpecs } from '../../model/weights.js';
import type { LazyWeight } from '../../onnx/graph.js';
import { isPresetName, presetConfig, presetList, PRESET_NAMES, PRESETS, TOKENIZER_FILE, VQGAN_FILE, type HubFile } from '../../presets.js';
import type { StateDict } from '../../tensor.js';
import { toFloat32 } from '../../tensor.js';
import type { TextTokenizer } from '../../tokenizer/text-encoding.js';
import { YttmTokenizer } from '../../tokenizer/yttm.js';
import { SBER_VQGAN_CONFIG, vqganConfigFromYaml, type VqganConfig } from '../../vqgan/config.js';
import { Vqgan } from '../../vqgan/vqgan-model.js';
import { vqganParameterSpecs } from '../../vqgan/weights.js';
import { runtime } from '../current.js';
import type { ByteSource, ExecutionProvider } from '../types.js';
import { FetchError, openUrlBytes, type FetchCache } from './byte-source.js';
import { CACHE_NAME, openBrowserCache } from './cache.js';
import { webgpuAvailable } from './webgpu.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
const WEIGHT_FILES = ['pytorch_model.bin', 'model.safetensors'];
const VQGAN_NAMES = ['vqgan.gumbelf8-sber.model.ckpt', 'vqgan.ckpt', 'vqgan.safetensors'];
const VQGAN_CONFIG_NAMES = ['vqgan.gumbelf8-sber.config.yml', 'config.yaml', 'config.yml'];

const isRepoId = (s: string) => /^[\w.-]+\/[\w.-]+$/.test(s);
const isFolderUrl = (s: string) => /^(https?:)?\/\//.test(s) || s.startsWith('/') || s.startsWith('./') || s.startsWith('../');

/**
 * The precision used when none is asked for: int8 on WASM (the 350M fits its 4 GB with room);
 * on WebGPU fp16 where the adapter has `shader-f16`, else fp32.
 */
export async function defaultWebPrecision(eps: readonly ExecutionProvider[] | undefined): Promise<LinearPrecision> {
  if (!eps?.includes('webgpu')) return 'int8';
  return (await webgpuAvailable()).shaderF16 ? 'fp16' : 'fp32';
}

interface Fetcher {
  /** a file of a hub repo (`shared` files are read at main, as on Node) */
  hub(file: HubFile, shared?: boolean): string;
  open(url: string): Promise<ByteSource>;
  /** the first of `urls` that exists (404s are skipped) */
  first(urls: string[], what: string): Promise<ByteSource>;
  text(url: string): Promise<string>;
}

function makeFetcher(opts: FromPretrainedOptions, cache: FetchCache | undefined): Fetcher {
  const endpoint = (opts.endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const revision = opts.revision ?? 'main';
  const headers: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  const base = globalThis.location?.href;
  const open = (url: string): Promise<ByteSource> => {
    const name = url.replace(/\?.*$/, '');
    const file = name.slice(name.lastIndexOf('/') + 1);
    let loaded = 0;
    let total = 0;
    const t0 = Date.now();
    return openUrlBytes(url, {
      headers, signal: opts.signal, cache, offline: opts.offline, name,
      onNetworkBytes: (n) => {
        // reads overlap a little (a zip entry's local header comes with its data): never past the file
        loaded = Math.min(total || Infinity, loaded + n);
        const seconds = (Date.now() - t0) / 1000;
        const bytesPerSecond = seconds > 0 ? loaded / seconds : 0;
        opts.onProgress?.({ stage: 'download', file, loaded, total, bytesPerSecond, etaSeconds: bytesPerSecond > 0 ? Math.max(0, total - loaded) / bytesPerSecond : null });
      },
    }).then((src) => { total = src.size; return src; });
  };
  return {
    hub: (f, shared = false) => `${endpoint}/${f.repo}/resolve/${encodeURIComponent(shared ? 'main' : revision)}/${f.file}`,
    open: (url) => open(new URL(url, base).href),
    async first(urls, what) {
      const misses: string[] = [];
      for (const url of urls) {
        try {
          return await open(new URL(url, base).href);
        } catch (e) {
          if (!(e instanceof FetchError && (e.status === 404 || e.code === 'OFFLINE'))) throw e;
          misses.push(`${url} (${e.status === 404 ? 'not found' : 'not cached, offline'})`);
        }
      }
      throw new RudolphError(opts.offline ? 'OFFLINE' : 'DOWNLOAD', `${what}: none of ${misses.join(', ')}`);
    },
    async text(url) {
      const src = await open(new URL(url, base).href);
      return new TextDecoder('utf-8').decode(await src.read(0, src.size));
    },
  };
}

interface Locations {
  cfg: RudolphConfig;
  weights: string[];
  tokenizer: string[];
  vqgan: string[];
  vqganConfig: string[];
}

async function locate(source: string, f: Fetcher): Promise<Locations> {
  const shared = { tokenizer: [f.hub(TOKENIZER_FILE, true)], vqgan: [f.hub(VQGAN_FILE, true)], vqganConfig: [] as string[] };
  if (isPresetName(source)) {
    const { checkpoint } = PRESETS[source];
    return { cfg: presetConfig(source), weights: [f.hub(checkpoint)], ...shared };
  }
  if (isFolderUrl(source)) {
    const dir = source.endsWith('/') ? source : `${source}/`;
    const cfg = configFromJson(JSON.parse(await f.text(`${dir}config.json`)), `${dir}config.json`);
    return {
      cfg, weights: WEIGHT_FILES.map((w) => dir + w), tokenizer: [`${dir}bpe.model`, ...shared.tokenizer],
      vqgan: [...VQGAN_NAMES.map((n) => dir + n), ...shared.vqgan], vqganConfig: VQGAN_CONFIG_NAMES.map((n) => dir + n),
    };
  }
  if (isRepoId(source)) {
    const url = f.hub({ repo: source, file: 'config.json' });
    let json: unknown;
    try {
      json = JSON.parse(await f.text(url));
    } catch (e) {
      if (e instanceof SyntaxError) throw new ConfigError(`${url}: not valid JSON: ${e.message}`);
      throw e;
    }
    return {
      cfg: configFromJson(json, url), weights: WEIGHT_FILES.map((file) => f.hub({ repo: source, file })),
      ...shared, tokenizer: [f.hub({ repo: source, file: 'bpe.model' }), ...shared.tokenizer],
    };
  }
  throw new ConfigError(`model "${source}" is not a preset (${presetList()}), a model folder URL or a hub repo id (org/name)`);
}

/** A VQGAN config: the first YAML beside the checkpoint that exists, else the Sber preset. */
async function vqganConfig(urls: string[], f: Fetcher): Promise<VqganConfig> {
  for (const url of urls) {
    let text: string;
    try {
      text = await f.text(url);
    } catch (e) {
      if (e instanceof FetchError && (e.status === 404 || e.code === 'OFFLINE')) continue;
      throw e;
    }
    return vqganConfigFromYaml(text, url);
  }
  return { ...SBER_VQGAN_CONFIG, chMult: [...SBER_VQGAN_CONFIG.chMult], attnResolutions: [...SBER_VQGAN_CONFIG.attnResolutions] };
}

/** The graph's weights as lazy loads: each tensor read (one Range request) and converted when the graph is serialized. */
function lazyWeights(cfg: RudolphConfig, reader: CheckpointReader, signal: AbortSignal | undefined): Map<string, LazyWeight> {
  const lazy = new Map<string, LazyWeight>();
  for (const spec of parameterSpecs(cfg)) {
    lazy.set(spec.name, {
      byteLength: 4 * spec.shape.reduce((a, b) => a * b, 1),
      load: async () => {
        throwIfAborted(signal);
        return toFloat32(await reader.read(spec.name, { toFloat32: true }));
      },
    });
  }
  return lazy;
}

/**
 * The graph over lazily read weights; a precision whose quantiser needs the weights in memory
 * (it sees whole tensors before the graph is written) gets them read first, one tensor at a time.
 */
async function buildGraph(cfg: RudolphConfig, reader: CheckpointReader, precision: LinearPrecision, quant: QuantOptions, signal: AbortSignal | undefined) {
  const lazy = lazyWeights(cfg, reader, signal);
  try {
    return buildRudolphGraph(cfg, lazy, { precision, quant });
  } catch (e) {
    if (!/in memory/.test((e as Error).message)) throw e;
    const eager = new Map<string, Float32Array>();
    for (const [name, w] of lazy) eager.set(name, (await w.load()) as Float32Array);
    return buildRudolphGraph(cfg, eager, { precision, quant });
  }
}

async function loadVqganFrom(urls: string[], configUrls: string[], f: Fetcher, opts: FromPretrainedOptions, progress: (p: LoadProgress) => void): Promise<{ vqgan: Vqgan; url: string }> {
  const src = await f.first(urls, 'VQGAN checkpoint');
  const cfg = await vqganConfig(configUrls, f);
  const reader = await openCheckpoint(src);
  try {
    progress({ stage: 'load', file: src.name });
    // only the model's own tensors: the official checkpoint's loss.* (discriminator, LPIPS) are never fetched
    const sd: StateDict = new Map();
    const keys = new Set(reader.keys());
    for (const spec of vqganParameterSpecs(cfg)) {
      throwIfAborted(opts.signal);
      if (keys.has(spec.name)) sd.set(spec.name, await reader.read(spec.name, { toFloat32: true }));
    }
    const vqgan = await Vqgan.fromWeights(cfg, sd, { threads: opts.threads, executionProviders: opts.executionProviders }, src.name);
    return { vqgan, url: src.name };
  } finally {
    await reader.close();
  }
}

export async function loadPretrainedWeb(source: string, opts: FromPretrainedOptions): Promise<LoadedModel> {
  // adapters are merged at conversion on Node; the web runtime has no merge step yet: refuse rather than ignore them
  if (opts.adapters?.length) throw new ConfigError('LoRA adapters are not supported by the web runtime yet (merge them on Node: rudolph merge)');
  const batchSize = opts.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize must be a positive integer, got ${batchSize}`);
  if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 1)) throw new InputError(`threads must be a positive integer, got ${opts.threads}`);
  if (typeof source !== 'string' || source.trim() === '') throw new ConfigError('model: give a preset name, a model folder URL or a hub repo id');
  const precision = opts.precision ?? await defaultWebPrecision(opts.executionProviders);
  const progress = (p: LoadProgress) => opts.onProgress?.(p);
  const cache = await openBrowserCache();
  const f = makeFetcher(opts, cache);
  const where = await locate(source, f);
  const { cfg } = where;
  throwIfAborted(opts.signal);

  let tokenizer: TextTokenizer;
  let tokenizerFile: string;
  if (typeof opts.tokenizer === 'object') {
    tokenizer = opts.tokenizer;
    tokenizerFile = 'custom';
  } else {
    const src = await f.first(opts.tokenizer ? [opts.tokenizer] : where.tokenizer, 'tokenizer (bpe.model)');
    tokenizer = YttmTokenizer.fromBuffer(await src.read(0, src.size), src.name).asTextTokenizer();
    tokenizerFile = src.name;
  }
  if (tokenizer.vocabSize > cfg.bpeVocab) {
    throw new ConfigError(`tokenizer has ${tokenizer.vocabSize} tokens but the model's text vocabulary holds ${cfg.bpeVocab}: they do not belong together`);
  }

  const weightsSource = await f.first(where.weights, `${source}: model weights`);
  const reader = await openCheckpoint(weightsSource);
  let model: RudolphModel;
  try {
    checkTensorInfos(cfg, new Map(reader.keys().map((k: string) => [k, reader.info(k)])), weightsSource.name);
    progress({ stage: 'convert', file: weightsSource.name });
    const sessionOpts = { threads: opts.threads, executionProviders: opts.executionProviders, precision };
    model = await RudolphModel.fromGraph(cfg, await buildGraph(cfg, reader, precision, runtimeQuant({}, opts.executionProviders), opts.signal), sessionOpts);
  } finally {
    await reader.close();
  }

  let vqgan: Vqgan | undefined;
  let vqganFile: string | null = null;
  try {
    if (opts.vqgan !== false) {
      const urls = opts.vqgan ? [opts.vqgan] : where.vqgan;
      const configs = opts.vqgan ? VQGAN_CONFIG_NAMES.map((n) => new URL(n, new URL(opts.vqgan as string, globalThis.location?.href)).href) : where.vqganConfig;
      ({ vqgan, url: vqganFile } = await loadVqganFrom(urls, configs, f, opts, progress));
      vqgan.checkFits(cfg.imageVocab, vqganFile);
    }
  } catch (e) {
    await vqgan?.release();
    await model.release();
    throw e;
  }
  const info: RudolphInfo = {
    source, config: cfg.params, specialTokens: cfg.specialTokens, presets: PRESET_NAMES,
    files: { weights: weightsSource.name, tokenizer: tokenizerFile, vqgan: vqganFile, converted: 'in memory (built in the tab)', adapters: [] },
    cacheDir: `Cache API: ${CACHE_NAME}`,
    runtime: {
      name: 'web', onnxruntime: runtime().onnxruntimeVersion,
      executionProviders: [...new Set([...(opts.executionProviders ?? []).filter((p) => p !== 'cpu'), 'wasm'])], threads: opts.threads ?? 'auto', precision,
    },
    batchSize,
  };
  return { model, cfg, tokenizer, vqgan, batchSize, info };
}
