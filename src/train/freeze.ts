/**
 * Choosing which parameters train: glob-like patterns over the official parameter names
 * (`*` any run of characters, `?` one character, `[0-3]` / `[!0-3]` classes, `{a,b}`
 * alternatives), e.g. `transformer.layers.2[0-3].*` or `*embeddings*`.
 */
import type { RudolphConfig } from '../model/config.js';
import { parameterSpecs } from '../model/weights.js';
import { globToRegExp } from '../util/glob.js';
import { TrainingError } from './errors.js';

export { globToRegExp } from '../util/glob.js';

/** Names matching any pattern; a pattern that matches nothing is an error (a typo would silently train everything). */
export function matchParameters(names: readonly string[], patterns: readonly string[]): string[] {
  const regs = patterns.map((p) => ({ p, re: globToRegExp(p) }));
  for (const { p, re } of regs) {
    if (!names.some((n) => re.test(n))) throw new TrainingError(`parameter pattern "${p}" matches no parameter of this model`);
  }
  return names.filter((n) => regs.some(({ re }) => re.test(n)));
}

export interface FreezeOptions {
  /** Parameters to freeze (patterns). */
  freeze?: readonly string[];
  /** Train only these (patterns); everything else is frozen. Combined with `freeze`, freezing wins. */
  trainOnly?: readonly string[];
}

/** The trainable parameter names, in official order. */
export function trainableParameters(cfg: RudolphConfig, opts: FreezeOptions = {}): string[] {
  const all = parameterSpecs(cfg).map((s) => s.name);
  const candidates = opts.trainOnly ? matchParameters(all, opts.trainOnly) : all;
  const frozen = new Set(opts.freeze?.length ? matchParameters(all, opts.freeze) : []);
  const out = candidates.filter((n) => !frozen.has(n));
  if (out.length === 0) throw new TrainingError('freezing leaves no parameter to train');
  return out;
}

/** Patterns that train only the last k transformer layers, plus (by default) the final norm and the logits head. */
export function lastLayersPatterns(cfg: RudolphConfig, k: number, opts: { head?: boolean } = {}): string[] {
  if (!Number.isInteger(k) || k < 0 || k > cfg.numLayers) throw new TrainingError(`last layers: k must be an integer in [0, ${cfg.numLayers}], got ${k}`);
  const out = Array.from({ length: k }, (_, i) => `transformer.layers.${cfg.numLayers - k + i}.*`);
  if (opts.head ?? true) out.push('transformer.final_layernorm.*', 'to_logits.*');
  if (out.length === 0) throw new TrainingError('last layers: k = 0 without the head trains nothing');
  return out;
}
