export {
  bottleneckChannels, decoderLevels, downsamplingFactor, encoderLevels, readVqganConfigFile, SBER_VQGAN_CONFIG,
  validateVqganConfig, vqganConfigFromObject, vqganConfigFromYaml, type LevelLayout, type VqganConfig,
} from './config.js';
export { DECODE_IO, ENCODE_IO, type DecodeIntermediate, type EncodeIntermediate } from './vqgan-graph.js';
export {
  Vqgan, type EncodeResult, type FloatImages, type FloatTensor, type GridShape, type VqganImageInput,
  type VqganOptions,
} from './vqgan-model.js';
export { randomVqganStateDict, vqganParameterSpecs, vqganWeightsFromStateDict, type VqganParam, type VqganWeights } from './weights.js';
