/**
 * Dropout whose masks are a pure function of (seed, layer, site, element): a counter-based
 * generator in the graph (lowbias32 hash of the element index, keyed by the seed fed as an
 * input). onnxruntime's Dropout draws from a generator owned by the session, so its masks depend
 * on how many runs the session has made; these do not. That is what lets the trainer
 *  - recompute a layer in its backward pass with the very masks of its forward pass,
 *  - start every micro-batch's masks from (seed, step, micro-batch) without rebuilding sessions,
 *    so checkpoints and resumes cannot change the trained model.
 *
 * Per element: h = ((index ^ key)·C1 ^ ((index ^ key)·C1 >> 16))·C2 — two multiply rounds, whose
 * high bits the keep-test h ≥ p·2³² reads — then x·mask/(1-p) as torch's F.dropout. Six passes
 * over the tensor: as fast as onnxruntime's own Dropout (measured), where the full lowbias32
 * finaliser took twice as long.
 */
import type { DropoutHook } from '../model/graph-context.js';
import { attr, type GraphBuilder, type Value } from '../onnx/graph.js';

const C_LAYER = 0x632be5ab;

/** lowbias32 (C. Wellons): a 32-bit integer hash with full avalanche. JS twin of `mix32Graph`. */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** FNV-1a of a string (site names → 32-bit keys). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The seed of one micro-batch's masks: (run seed, optimizer step, micro-batch index). */
export function microBatchSeed(seed: number, step: number, micro: number): number {
  return mix32((mix32((mix32(seed >>> 0) ^ (step >>> 0)) >>> 0) ^ mix32(micro + 0x9e3779b9)) >>> 0);
}

function u32(g: GraphBuilder, v: number): Value {
  return g.constant('u32', 'uint32', [], Uint32Array.of(v >>> 0));
}

function mix32Graph(g: GraphBuilder, x: Value): Value {
  const xorShift = (v: Value, s: number) => g.op('BitwiseXor', [v, g.op('BitShift', [v, u32(g, s)], { direction: attr.string('RIGHT') })]);
  let h = xorShift(x, 16);
  h = g.op('Mul', [h, u32(g, 0x7feb352d)]);
  h = xorShift(h, 15);
  h = g.op('Mul', [h, u32(g, 0x846ca68b)]);
  return xorShift(h, 16);
}

/** `transformer.layers.7.attention.probs` → layer 7, site `attention.probs`; other names: layer -1. */
export function splitSite(site: string): { layer: number; rest: string } {
  const m = /^transformer\.layers\.(\d+)\.(.+)$/.exec(site);
  return m ? { layer: Number(m[1]), rest: m[2] } : { layer: -1, rest: site };
}

export interface SeededDropoutOptions {
  /** uint32 scalar input: the micro-batch's seed */
  seed: Value;
  /**
   * uint32 scalar input: the layer a shared one-layer graph is running (its site names say
   * layer 0). Unset: the layer is read from the site name (whole-model graphs).
   */
  layer?: Value;
}

/** A DropoutHook drawing masks from the seed input (see the module comment). */
export function seededDropout(o: SeededDropoutOptions): DropoutHook {
  const keysOf = new WeakMap<GraphBuilder, Map<string, Value>>();
  return (g, x, p, site) => g.scope('dropout', () => {
    let keys = keysOf.get(g);
    if (!keys) { keys = new Map(); keysOf.set(g, keys); }
    if (!(p > 0 && p < 1)) throw new RangeError(`dropout probability must be in (0, 1), got ${p}`);
    const { layer, rest } = splitSite(site);
    const layerValue = o.layer ?? u32(g, layer);
    const cacheKey = `${o.layer ? 'input' : layer}|${rest}`;
    let key = keys.get(cacheKey);
    if (!key) {
      // key = mix(mix(seed ^ mix(layer + C)) ^ fnv(site))
      const layerKey = mix32Graph(g, g.op('BitwiseXor', [o.seed, mix32Graph(g, g.op('Add', [layerValue, u32(g, C_LAYER)]))]));
      key = mix32Graph(g, g.op('BitwiseXor', [layerKey, u32(g, fnv1a(rest))]));
      keys.set(cacheKey, key);
    }
    const shape = g.op('Shape', [x]);
    const count = g.op('Cast', [g.op('Size', [x])], { to: attr.int(6) });   // int32
    const index = g.op('Cast', [g.op('Range', [g.constant('zero', 'int32', [], Int32Array.of(0)), count, g.constant('one', 'int32', [], Int32Array.of(1))])], { to: attr.int(12) });
    let hash = g.op('Mul', [g.op('BitwiseXor', [g.op('Reshape', [index, shape]), key]), u32(g, 0x9e3779b1)]);
    hash = g.op('BitwiseXor', [hash, g.op('BitShift', [hash, u32(g, 16)], { direction: attr.string('RIGHT') })]);
    hash = g.op('Mul', [hash, u32(g, 0x85ebca6b)]);
    const keep = g.op('Cast', [g.op('GreaterOrEqual', [hash, u32(g, Math.min(0xffffffff, Math.round(p * 2 ** 32)))])], { to: attr.int(1) });
    return g.op('Mul', [x, g.op('Mul', [keep, g.scalarFloat(1 / (1 - p))])]);
  });
}
