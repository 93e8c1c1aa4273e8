/**
 * rudolph-ts in a browser (`import … from 'rudolph-ts/web'`): the same library on onnxruntime-web
 * (WASM, WebGPU), models straight from the hub's official files by HTTP Range requests, cached
 * in the browser. Importing it registers the web runtime and loader.
 */
import './runtime/web/index.js';

export { Rudolph, type FromPretrainedOptions, type LoadProgress, type RudolphInfo } from './rudolph.js';
export { RudolphError, AbortError, CheckpointError, ConfigError, InputError, WeightsError, type ErrorCode } from './errors.js';
export { PRESETS, PRESET_NAMES, presetConfig, type Preset, type PresetName, type HubFile } from './presets.js';
export { configFromJson, makeConfig, type RudolphConfig, type RudolphParams, type SpecialTokens } from './model/config.js';
export { RudolphModel, type LogitsSelection, type RunOptions, type ModelOutputs } from './model/rudolph-model.js';
export { KVCache } from './model/kv-cache.js';
export { PRECISIONS, type LinearPrecision } from './model/graph-context.js';
export { randomWeights, parameterSpecs } from './model/weights.js';
export { YttmTokenizer } from './tokenizer/yttm.js';
export { encodeText, prepareText, IdListTokenizer, type TextTokenizer } from './tokenizer/text-encoding.js';
export { Vqgan } from './vqgan/index.js';
export { composeGrid, preprocessImage, type RgbImage } from './image/index.js';
export { useRuntime, runtime } from './runtime/current.js';
export type { Runtime, ByteSource, ExecutionProvider } from './runtime/types.js';
export { taskCatalog, TASKS, TASK_METHODS, taskByName, type CatalogTask, type CatalogField, type TaskMethod } from './tasks/registry.js';
export type { Progress, RunControl } from './util/progress.js';
export type { ImageInput } from './tasks/inputs.js';
export type { SamplingOptions } from './generation/sampling.js';
export type { Borders, ImagePrompt, GuidanceOptions } from './tasks/image-tokens.js';
export { Rng } from './util/random.js';
export { webRuntime, configureWebRuntime, webgpuAvailable, type WebRuntimeSettings } from './runtime/web/index.js';
export { openUrlBytes, FetchError, type FetchCache, type UrlSourceOptions } from './runtime/web/byte-source.js';
export { openBrowserCache, clearBrowserCache, CACHE_NAME } from './runtime/web/cache.js';
export { decodeImageWeb as decodeImage, encodePngWeb as encodePng } from './runtime/web/image-codec.js';
