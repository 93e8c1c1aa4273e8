/**
 * The RRDBNet parameter set: official state_dict names and shapes for a config, strict
 * validation of a loaded state dict (the official `load_state_dict(..., strict=True)`: nothing
 * missing, nothing extra), and seeded random weights for tests and benchmarks.
 */
import { WeightsError } from '../errors.js';
import { Rng } from '../util/random.js';
import { numel, shapeToString, toFloat32, type StateDict } from '../tensor.js';
import { unshuffleFactor, upsampleStages, type RrdbNetConfig } from './config.js';

export interface RrdbNetParam { shape: number[]; data: Float32Array }
/** Name → float32 parameter, official names. */
export type RrdbNetWeights = Map<string, RrdbNetParam>;
export interface RrdbNetParamSpec { name: string; shape: number[] }

const FLOAT_DTYPES = ['float32', 'float16', 'bfloat16', 'float64'];

function conv(specs: RrdbNetParamSpec[], prefix: string, out: number, inp: number): void {
  specs.push({ name: `${prefix}.weight`, shape: [out, inp, 3, 3] }, { name: `${prefix}.bias`, shape: [out] });
}

/** Every parameter of RRDBNet for a config, in the official state_dict order. */
export function rrdbNetParameterSpecs(cfg: RrdbNetConfig): RrdbNetParamSpec[] {
  const { numFeat: f, numGrowCh: g } = cfg;
  const specs: RrdbNetParamSpec[] = [];
  const r = unshuffleFactor(cfg);
  conv(specs, 'conv_first', f, cfg.numInCh * r * r);
  for (let b = 0; b < cfg.numBlock; b++) {
    for (const rdb of ['rdb1', 'rdb2', 'rdb3']) {
      for (let k = 1; k <= 4; k++) conv(specs, `body.${b}.${rdb}.conv${k}`, g, f + (k - 1) * g);
      conv(specs, `body.${b}.${rdb}.conv5`, f, f + 4 * g);
    }
  }
  conv(specs, 'conv_body', f, f);
  for (let u = 1; u <= upsampleStages(cfg); u++) conv(specs, `conv_up${u}`, f, f);
  conv(specs, 'conv_hr', f, f);
  conv(specs, 'conv_last', cfg.numOutCh, f);
  return specs;
}

export function rrdbNetParameterCount(cfg: RrdbNetConfig): number {
  return rrdbNetParameterSpecs(cfg).reduce((n, s) => n + numel(s.shape), 0);
}

const list = (keys: string[]) => `${keys.slice(0, 5).join(', ')}${keys.length > 5 ? `, … (${keys.length} in all)` : ''}`;

/** Checks a state dict against the config (strict: same key set, same shapes, float dtypes) and converts it to float32. */
export function rrdbNetWeightsFromStateDict(cfg: RrdbNetConfig, sd: StateDict, source = 'state dict'): RrdbNetWeights {
  const specs = rrdbNetParameterSpecs(cfg);
  const expected = new Set(specs.map((s) => s.name));
  const missing = specs.filter((s) => !sd.has(s.name)).map((s) => s.name);
  const extra = [...sd.keys()].filter((k) => !expected.has(k));
  if (missing.length > 0 || extra.length > 0) {
    const parts = [];
    if (missing.length > 0) parts.push(`missing ${list(missing)}`);
    if (extra.length > 0) parts.push(`unexpected ${list(extra)}`);
    throw new WeightsError(`${source}: not an RRDBNet ×${cfg.scale} with ${cfg.numFeat} features, ${cfg.numBlock} blocks, growth ${cfg.numGrowCh}: ${parts.join('; ')}`);
  }
  const out: RrdbNetWeights = new Map();
  for (const spec of specs) {
    const t = sd.get(spec.name)!;
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      throw new WeightsError(`${source}: tensor ${spec.name} has shape ${shapeToString(t.shape)}, expected ${shapeToString(spec.shape)} for RRDBNet ×${cfg.scale} (${cfg.numFeat} features, growth ${cfg.numGrowCh})`);
    }
    if (!FLOAT_DTYPES.includes(t.dtype)) throw new WeightsError(`${source}: tensor ${spec.name} has dtype ${t.dtype}, expected a floating type`);
    const data = toFloat32(t);
    if (data.length !== numel(spec.shape)) throw new WeightsError(`${source}: tensor ${spec.name} holds ${data.length} values, expected ${numel(spec.shape)}`);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw new WeightsError(`${source}: tensor ${spec.name} holds a non-finite value (${data[i]}) at index ${i}`);
    }
    out.set(spec.name, { shape: spec.shape, data });
  }
  return out;
}

/**
 * Seeded random weights (tests, benchmarks) in the official init's spirit: convs ~ U(±1/√fan_in)
 * like torch's default, dense-block convs scaled by 0.1 with zero bias like `default_init_weights`.
 */
export function randomRrdbNetStateDict(cfg: RrdbNetConfig, seed = 1): StateDict {
  const rng = new Rng(seed);
  const sd: StateDict = new Map();
  let bound = 1;
  for (const spec of rrdbNetParameterSpecs(cfg)) {
    const data = new Float32Array(numel(spec.shape));
    const dense = spec.name.startsWith('body.');
    if (spec.shape.length === 4) bound = (dense ? 0.1 : 1) / Math.sqrt(numel(spec.shape.slice(1)));
    if (!(dense && spec.name.endsWith('.bias'))) {
      rng.fillUniform(data, -bound, bound);
    }
    sd.set(spec.name, { dtype: 'float32', shape: spec.shape, data });
  }
  return sd;
}

/**
 * The network size a state dict holds (official names): features and input channels from
 * conv_first, growth from the first dense conv, blocks from the highest `body.N`, output channels
 * from conv_last. Lets any RRDBNet-shaped Real-ESRGAN file open without naming its size; the
 * strict check (`rrdbNetWeightsFromStateDict`) still runs on the result.
 */
export function inferRrdbNetConfig(sd: StateDict, scale: RrdbNetConfig['scale'], source = 'state dict'): RrdbNetConfig {
  const shapeOf = (name: string): number[] => {
    const t = sd.get(name);
    if (!t) throw new WeightsError(`${source}: not an RRDBNet (Real-ESRGAN) state dict: no ${name}`);
    if (t.shape.length !== 4 && !name.endsWith('.bias')) throw new WeightsError(`${source}: tensor ${name} has shape ${shapeToString(t.shape)}, expected a 4-d conv weight`);
    return t.shape;
  };
  const [numFeat, inCh] = shapeOf('conv_first.weight');
  const [numGrowCh] = shapeOf('body.0.rdb1.conv1.weight');
  const [numOutCh] = shapeOf('conv_last.weight');
  let numBlock = 0;
  for (const key of sd.keys()) {
    const m = /^body\.(\d+)\./.exec(key);
    if (m) numBlock = Math.max(numBlock, Number(m[1]) + 1);
  }
  const r = unshuffleFactor({ scale });
  if (inCh % (r * r) !== 0) throw new WeightsError(`${source}: conv_first takes ${inCh} channels, not a multiple of ${r * r} as ×${scale} (pixel-unshuffle) needs`);
  return { scale, numFeat, numBlock, numGrowCh, numInCh: inCh / (r * r), numOutCh };
}
