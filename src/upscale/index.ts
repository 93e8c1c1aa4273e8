export {
  checkScale, DEFAULT_TILING, isUpscaleScale, realEsrganConfig, resolveTiling, rrdbNetConfigFromArgs, UPSCALE_SCALES, validateRrdbNetConfig,
  type RrdbNetConfig, type Tiling, type TilingOptions, type UpscaleScale,
} from './config.js';
export { DEFAULT_MAX_OUTPUT_PIXELS, predict, type PredictControl, type PredictResult } from './predict.js';
export { buildRrdbNetGraph, RRDBNET_IO, type RrdbNetIntermediate } from './rrdbnet-graph.js';
export { loadRrdbNetWeights, REALESRGAN_STATE_DICT_KEYS, RrdbNet, type FloatTensor, type RrdbNetOptions } from './rrdbnet.js';
export { padSymmetric, patchGrid, Stitcher, writePatch, type PatchGrid } from './tiling.js';
export {
  SuperResolution, Upscaler, type SuperResolutionOptions, type UpscaleRequest, type UpscalerOptions, type UpscalerWeights,
} from './upscaler.js';
export {
  inferRrdbNetConfig, randomRrdbNetStateDict, rrdbNetParameterCount, rrdbNetParameterSpecs, rrdbNetWeightsFromStateDict,
  type RrdbNetParam, type RrdbNetParamSpec, type RrdbNetWeights,
} from './weights.js';
