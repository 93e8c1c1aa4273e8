/**
 * LoRA adapters (Hu et al. 2021) as PEFT defines them: for a linear layer y = x·Wᵀ + b, the
 * adapted layer is y + (α/r)·dropout(x)·Aᵀ·Bᵀ with A [r, in] (Kaiming-uniform init) and
 * B [out, r] (zeros), so a fresh adapter leaves the model unchanged. Merged, W' = W + (α/r)·B·A.
 *
 * This module holds what does not depend on where files live: which linear layers exist and how
 * targets select them (PEFT's `target_modules` semantics), the tensors' names and shapes (PEFT
 * keys are `base_model.model.<module>.lora_A.weight`), the initialisation, the graph hook that
 * adds the update to `linear()`, the `adapter_config.json` fields, and the merge.
 */
import { ConfigError, InputError } from '../errors.js';
import { attr, GraphBuilder, type Value } from '../onnx/graph.js';
import { f32, Session, type SessionOptions } from '../onnx/session.js';
import { numel, type ParamSpec, type StateDict, toFloat32 } from '../tensor.js';
import { globToRegExp } from '../util/glob.js';
import { Rng } from '../util/random.js';
import type { RudolphConfig } from './config.js';
import { type GraphContext, type LinearAdapter, maybeDropout } from './graph-context.js';

/** PEFT's key prefix when it wraps a plain torch module (`PeftModel(model, config)`). */
export const PEFT_PREFIX = 'base_model.model.';

/** The default targets: every layer's attention projections (PEFT suffix names). */
export const DEFAULT_LORA_TARGETS = ['query_key_value', 'dense'] as const;

/** A linear layer of the model: its module name (official path) and weight shape [out, in]. */
export interface LinearModule { name: string; out: number; in: number }

/** Every nn.Linear of RUDOLPH, in official order. */
export function linearModules(cfg: RudolphConfig): LinearModule[] {
  const h = cfg.hidden;
  const out: LinearModule[] = [];
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `transformer.layers.${i}`;
    out.push(
      { name: `${p}.attention.query_key_value`, out: 3 * h, in: h },
      { name: `${p}.attention.dense`, out: h, in: h },
      { name: `${p}.mlp.dense_h_to_4h`, out: 4 * h, in: h },
      { name: `${p}.mlp.dense_4h_to_h`, out: h, in: 4 * h },
    );
  }
  out.push({ name: 'to_logits.1', out: cfg.logitsWidth, in: h });
  return out;
}

const isGlob = (t: string) => /[*?[{]/.test(t);

/**
 * Modules selected by `targets`, as PEFT reads `target_modules`: a name matches a module equal
 * to it or ending in `.<name>`; `all-linear` is every linear layer except the output head; an
 * entry with glob characters (`*`, `?`, `[0-3]`, `{a,b}`) matches whole module names. A target
 * that matches nothing is an error (a typo would silently train nothing).
 */
export function resolveLoraTargets(cfg: RudolphConfig, targets: readonly string[]): string[] {
  if (targets.length === 0) throw new InputError('LoRA targets: give at least one module name or pattern');
  const modules = linearModules(cfg).map((m) => m.name);
  const chosen = new Set<string>();
  for (const t of targets) {
    const hits = t === 'all-linear'
      ? modules.filter((m) => m !== 'to_logits.1')
      : isGlob(t)
        ? modules.filter((m) => globToRegExp(t).test(m))
        : modules.filter((m) => m === t || m.endsWith(`.${t}`));
    if (hits.length === 0) throw new InputError(`LoRA target "${t}" matches no linear layer (e.g. query_key_value, dense, dense_h_to_4h, dense_4h_to_h, all-linear, or a pattern like "transformer.layers.2[0-3].attention.*")`);
    for (const m of hits) chosen.add(m);
  }
  return modules.filter((m) => chosen.has(m));
}

export type LoraMatrix = 'A' | 'B';

/** Our name of an adapter tensor (PEFT's key without its `base_model.model.` prefix). */
export function loraParamName(module: string, which: LoraMatrix): string {
  return `${module}.lora_${which}.weight`;
}

/** An adapted layer: rank r, the update's scale (α/r) and the dropout on its input. */
export interface LoraModule { rank: number; scale: number; dropout: number }

/** Shapes of the adapter tensors of `modules` (A [r, in], B [out, r]), in module order. */
export function loraSpecs(cfg: RudolphConfig, modules: ReadonlyMap<string, LoraModule>): ParamSpec[] {
  const byName = new Map(linearModules(cfg).map((m) => [m.name, m]));
  const specs: ParamSpec[] = [];
  for (const [name, m] of modules) {
    const lin = byName.get(name);
    if (!lin) throw new InputError(`LoRA: ${name} is not a linear layer of this model`);
    specs.push({ name: loraParamName(name, 'A'), shape: [m.rank, lin.in] }, { name: loraParamName(name, 'B'), shape: [lin.out, m.rank] });
  }
  return specs;
}

/** LoRA hyper-parameters as PEFT's LoraConfig names them. */
export interface LoraOptions {
  /** rank r (default 8) */
  rank?: number;
  /** α: the update is scaled by α/r (default 16) */
  alpha?: number;
  /** dropout on the adapter's input during training (default 0.05) */
  dropout?: number;
  /** module names or patterns (default: query_key_value, dense — every layer's attention) */
  targets?: readonly string[];
}

export const LORA_DEFAULTS = { rank: 8, alpha: 16, dropout: 0.05 } as const;

/** Validated LoRA hyper-parameters and the modules they adapt. */
export interface LoraSetup {
  rank: number;
  alpha: number;
  dropout: number;
  targets: string[];
  modules: Map<string, LoraModule>;
}

export function loraSetup(cfg: RudolphConfig, o: LoraOptions = {}): LoraSetup {
  const rank = o.rank ?? LORA_DEFAULTS.rank;
  const alpha = o.alpha ?? LORA_DEFAULTS.alpha;
  const dropout = o.dropout ?? LORA_DEFAULTS.dropout;
  if (!Number.isInteger(rank) || rank < 1 || rank > cfg.hidden) throw new InputError(`LoRA rank must be an integer in [1, ${cfg.hidden}], got ${rank}`);
  if (!(alpha > 0) || !Number.isFinite(alpha)) throw new InputError(`LoRA alpha must be a positive number, got ${alpha}`);
  if (!(dropout >= 0 && dropout < 1)) throw new InputError(`LoRA dropout must be in [0, 1), got ${dropout}`);
  const targets = [...(o.targets ?? DEFAULT_LORA_TARGETS)];
  const modules = new Map(resolveLoraTargets(cfg, targets).map((m) => [m, { rank, scale: alpha / rank, dropout }]));
  return { rank, alpha, dropout, targets, modules };
}

/**
 * PEFT's initialisation: A ~ kaiming_uniform_(a=√5), i.e. U(-1/√in, 1/√in); B = 0. Seeded,
 * one generator stream per module (so adding a target does not change the others' init).
 */
export function initLoraWeights(cfg: RudolphConfig, modules: ReadonlyMap<string, LoraModule>, seed: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  const all = linearModules(cfg).map((m) => m.name);
  for (const spec of loraSpecs(cfg, modules)) {
    const data = new Float32Array(numel(spec.shape));
    if (spec.name.endsWith('.lora_A.weight')) {
      const bound = 1 / Math.sqrt(spec.shape[1]);
      new Rng(seed, 1 + all.indexOf(spec.name.slice(0, -'.lora_A.weight'.length))).fillUniform(data, -bound, bound);
    }
    out.set(spec.name, data);
  }
  return out;
}

/**
 * The graph hook that adds the LoRA update to the adapted linear layers:
 * y + scale · Gemm(dropout(x), Aᵀ) · Bᵀ, the second product fused with the sum into one Gemm.
 * A and B are declared as model weights (graph inputs in 'input' mode, e.g. training).
 */
export function loraAdapter(modules: ReadonlyMap<string, LoraModule>, tensors: ReadonlyMap<string, Float32Array>, shapes: readonly ParamSpec[]): LinearAdapter {
  const shapeOf = new Map(shapes.map((s) => [s.name, s.shape]));
  return (ctx: GraphContext, x: Value, prefix: string, y: Value): Value => {
    const m = modules.get(prefix);
    if (!m) return y;
    const weight = (which: LoraMatrix) => {
      const name = loraParamName(prefix, which);
      const data = tensors.get(name), shape = shapeOf.get(name);
      if (!data || !shape) throw new InputError(`LoRA: no tensor ${name}`);
      return ctx.g.weight(name, 'float32', shape, data);
    };
    const g = ctx.g;
    const xd = maybeDropout(ctx, x, m.dropout, `${prefix}.lora_dropout`);
    const down = g.op('Gemm', [xd, weight('A')], { transB: attr.int(1) });   // [N, r]
    return g.op('Gemm', [down, weight('B'), y], { transB: attr.int(1), alpha: attr.float(m.scale) });   // [N, out]
  };
}

// ---- adapter_config.json ---------------------------------------------------------------------

/** The fields of PEFT's adapter_config.json that a LoRA adapter of this library writes. */
export interface PeftLoraConfig {
  peft_type: 'LORA';
  task_type: null;
  base_model_name_or_path: string | null;
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[];
  bias: 'none';
  fan_in_fan_out: false;
  inference_mode: boolean;
  init_lora_weights: true;
  modules_to_save: null;
  use_rslora: false;
  use_dora: false;
  rank_pattern: Record<string, never>;
  alpha_pattern: Record<string, never>;
  layers_to_transform: null;
  layers_pattern: null;
  revision: null;
}

/**
 * target_modules for a written adapter: a layer's short name (`query_key_value`) when every
 * layer's is adapted (what people write by hand), else full module names. The head is always
 * named in full: PEFT would match its suffix `1` against other modules.
 */
export function peftTargetModules(cfg: RudolphConfig, modules: Iterable<string>): string[] {
  const names = new Set(modules);
  const out: string[] = [];
  for (const m of linearModules(cfg)) {
    if (!names.has(m.name)) continue;
    const suffix = m.name.split('.').pop()!;
    const layered = m.name.startsWith('transformer.layers.');
    const everyLayer = layered && linearModules(cfg).filter((x) => x.name.startsWith('transformer.layers.') && x.name.endsWith(`.${suffix}`)).every((x) => names.has(x.name));
    const entry = everyLayer ? suffix : m.name;
    if (!out.includes(entry)) out.push(entry);
  }
  return out;
}

export function peftConfig(cfg: RudolphConfig, setup: Pick<LoraSetup, 'rank' | 'alpha' | 'dropout' | 'modules'>, base: string | null): PeftLoraConfig {
  return {
    peft_type: 'LORA', task_type: null, base_model_name_or_path: base,
    r: setup.rank, lora_alpha: setup.alpha, lora_dropout: setup.dropout,
    target_modules: peftTargetModules(cfg, setup.modules.keys()),
    bias: 'none', fan_in_fan_out: false, inference_mode: true, init_lora_weights: true, modules_to_save: null,
    use_rslora: false, use_dora: false, rank_pattern: {}, alpha_pattern: {}, layers_to_transform: null, layers_pattern: null, revision: null,
  };
}

/** An adapter read from PEFT files: its modules (rank, scale) and tensors by our names. */
export interface LoraAdapterWeights {
  modules: Map<string, LoraModule>;
  tensors: Map<string, Float32Array>;
  config: { r: number; lora_alpha: number; lora_dropout: number; target_modules: string[] | string; base_model_name_or_path?: string | null };
}

const bad = (source: string, what: string) => new ConfigError(`${source}: ${what}`);

/**
 * Validates a PEFT LoRA adapter (config + state dict) against the model: LoRA only, no bias or
 * DoRA or per-module patterns, every key a lora_A/lora_B of an existing linear layer, ranks
 * as configured, shapes as the layer's.
 */
export function adapterFromPeft(cfg: RudolphConfig, json: unknown, sd: StateDict, source: string): LoraAdapterWeights {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad(source, 'adapter_config.json is not a JSON object');
  const c = json as Record<string, unknown>;
  if (c.peft_type !== 'LORA') throw bad(source, `peft_type is ${JSON.stringify(c.peft_type)}; only LORA adapters are supported`);
  const r = c.r, alpha = c.lora_alpha ?? c.r;
  if (!Number.isInteger(r) || (r as number) < 1) throw bad(source, `r must be a positive integer, got ${JSON.stringify(r)}`);
  if (typeof alpha !== 'number' || !(alpha > 0)) throw bad(source, `lora_alpha must be a positive number, got ${JSON.stringify(alpha)}`);
  if (c.fan_in_fan_out === true) throw bad(source, 'fan_in_fan_out adapters (Conv1D layouts) do not apply to RUDOLPH\'s nn.Linear layers');
  if (c.bias !== undefined && c.bias !== 'none') throw bad(source, `bias "${String(c.bias)}" is not supported (only "none")`);
  if (c.use_dora === true) throw bad(source, 'DoRA adapters are not supported');
  for (const k of ['rank_pattern', 'alpha_pattern'] as const) {
    if (c[k] && typeof c[k] === 'object' && Object.keys(c[k] as object).length) throw bad(source, `${k} is not supported (one rank and alpha for every module)`);
  }
  if (c.modules_to_save && Array.isArray(c.modules_to_save) && c.modules_to_save.length) throw bad(source, 'modules_to_save is not supported');
  const rank = r as number;
  const scale = c.use_rslora === true ? alpha / Math.sqrt(rank) : alpha / rank;
  const dropout = typeof c.lora_dropout === 'number' ? c.lora_dropout : 0;
  const linear = new Map(linearModules(cfg).map((m) => [m.name, m]));
  const tensors = new Map<string, Float32Array>();
  const modules = new Map<string, LoraModule>();
  for (const [key, t] of sd) {
    const m = /^base_model\.model\.(.+)\.lora_([AB])\.weight$/.exec(key);
    if (!m) throw bad(source, `unexpected tensor ${key} (expected base_model.model.<module>.lora_A.weight / .lora_B.weight)`);
    const [, module, which] = m;
    const lin = linear.get(module);
    if (!lin) throw bad(source, `tensor ${key}: ${module} is not a linear layer of this model`);
    const want = which === 'A' ? [rank, lin.in] : [lin.out, rank];
    if (t.shape.length !== 2 || t.shape[0] !== want[0] || t.shape[1] !== want[1]) {
      throw bad(source, `tensor ${key} has shape [${t.shape.join(', ')}], expected [${want.join(', ')}] (r = ${rank})`);
    }
    if (!['float32', 'float16', 'bfloat16', 'float64'].includes(t.dtype)) throw bad(source, `tensor ${key} has dtype ${t.dtype}, expected a floating type`);
    tensors.set(loraParamName(module, which as LoraMatrix), toFloat32(t));
    modules.set(module, { rank, scale, dropout });
  }
  if (modules.size === 0) throw bad(source, 'the adapter holds no LoRA tensors');
  for (const module of modules.keys()) {
    for (const which of ['A', 'B'] as const) if (!tensors.has(loraParamName(module, which))) throw bad(source, `${module} has lora_${which === 'A' ? 'B' : 'A'} but no lora_${which}`);
  }
  const ordered = new Map([...linear.keys()].filter((n) => modules.has(n)).map((n) => [n, modules.get(n)!]));
  return {
    modules: ordered, tensors,
    config: { r: rank, lora_alpha: alpha, lora_dropout: dropout, target_modules: c.target_modules as string[] | string, base_model_name_or_path: c.base_model_name_or_path as string | null | undefined },
  };
}

/** Adapter tensors by PEFT key, for adapter_model.safetensors. */
export function peftStateDict(cfg: RudolphConfig, modules: ReadonlyMap<string, LoraModule>, tensors: ReadonlyMap<string, Float32Array>): StateDict {
  const sd: StateDict = new Map();
  for (const spec of loraSpecs(cfg, modules)) {
    const data = tensors.get(spec.name);
    if (!data) throw new InputError(`LoRA: missing tensor ${spec.name}`);
    sd.set(`${PEFT_PREFIX}${spec.name}`, { dtype: 'float32', shape: spec.shape, data });
  }
  return sd;
}

// ---- merging ---------------------------------------------------------------------------------

/**
 * W' = W + scale·B·A on onnxruntime (one Gemm per layer; a session per distinct scale). The
 * merged weight is what the adapted layer computes without dropout, up to rounding.
 */
export class LoraMerger {
  private sessions = new Map<number, Promise<Session>>();
  constructor(private readonly opts: SessionOptions = {}) {}

  async merge(w: Float32Array, a: Float32Array, b: Float32Array, out: number, inp: number, m: LoraModule): Promise<Float32Array> {
    if (w.length !== out * inp || a.length !== m.rank * inp || b.length !== out * m.rank) {
      throw new InputError(`LoRA merge: sizes ${w.length}/${a.length}/${b.length} do not fit [${out}, ${inp}] with rank ${m.rank}`);
    }
    let session = this.sessions.get(m.scale);
    if (!session) {
      const g = new GraphBuilder('lora-merge');
      const W = g.input('w', 'float32', ['out', 'in']);
      const A = g.input('a', 'float32', ['r', 'in']);
      const B = g.input('b', 'float32', ['out', 'r']);
      g.output(g.op('Gemm', [B, A, W], { alpha: attr.float(m.scale) }), 'merged', 'float32', ['out', 'in']);
      session = Session.create(g.toBytes(), 'LoRA merge', this.opts);
      this.sessions.set(m.scale, session);
    }
    const res = await (await session).run({ w: f32(w, [out, inp]), a: f32(a, [m.rank, inp]), b: f32(b, [out, m.rank]) });
    return res.merged.data as Float32Array;
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}

/**
 * Merges an adapter into `weights` (W ← W + scale·B·A for every adapted layer): the adapted
 * weights are replaced by new arrays, the others left as they are.
 */
export async function mergeLoraInto(cfg: RudolphConfig, weights: Map<string, Float32Array>, adapter: Pick<LoraAdapterWeights, 'modules' | 'tensors'>, merger: LoraMerger): Promise<void> {
  const byName = new Map(linearModules(cfg).map((m) => [m.name, m]));
  for (const [module, m] of adapter.modules) {
    const lin = byName.get(module);
    const w = weights.get(`${module}.weight`);
    if (!lin || !w) throw new InputError(`LoRA merge: the model has no linear layer ${module}`);
    weights.set(`${module}.weight`, await merger.merge(w, adapter.tensors.get(loraParamName(module, 'A'))!, adapter.tensors.get(loraParamName(module, 'B'))!, lin.out, lin.in, m));
  }
}
