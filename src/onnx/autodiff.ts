/**
 * Reverse-mode differentiation over a GraphBuilder's recorded nodes. `gradients` appends the
 * backward nodes to the same graph (so onnxruntime runs forward and backward as one session,
 * sharing the forward activations) and returns one gradient value per requested input.
 *
 * Only the nodes on a path from a requested input to the output are differentiated: frozen
 * parameters (not requested) cost nothing, and branches feeding only them are skipped.
 */
import type { GraphBuilder, Value } from './graph.js';
import type { NodeSpec } from './proto.js';
import { AutodiffError, VjpContext, type VjpRule } from './vjp/context.js';
import { elementwiseRules } from './vjp/elementwise.js';
import { linearRules } from './vjp/linear.js';
import { nnRules } from './vjp/nn.js';
import { shapeRules } from './vjp/shape-ops.js';
import { inferShapes } from './vjp/shapes.js';

export { AutodiffError } from './vjp/context.js';

/** Operators whose outputs never carry a gradient (shapes, comparisons, masks, index maths). */
const NON_DIFFERENTIABLE = new Set([
  'Shape', 'Size', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not',
  'NonZero', 'ConstantOfShape', 'Range', 'ArgMax', 'ArgMin', 'OneHot', 'IsNaN', 'IsInf', 'RandomUniformLike', 'RandomNormalLike',
]);

/** Operator type → gradient rule (the operators autodiff supports). */
export const VJP_RULES: Readonly<Record<string, VjpRule>> = { ...elementwiseRules, ...linearRules, ...shapeRules, ...nnRules };

export interface GradientOptions {
  /** Gradient of the output (default: ones, i.e. d(sum of output)/d(input)). */
  outputGrad?: Value;
  /**
   * Gradients flowing back through these values are multiplied by `factor` (their forward value
   * is unchanged): torch's `x·f + x.detach()·(1-f)`. Factor 0 is `.detach()`, and prunes the
   * backward pass behind the value.
   */
  scale?: readonly { value: Value; factor: number }[];
}

/** Rules cover the default ONNX domain; other domains' operators have none. */
function ruleOf(node: NodeSpec): VjpRule | undefined {
  return node.domain ? undefined : VJP_RULES[node.opType];
}

function isNonDifferentiable(node: NodeSpec): boolean {
  return !node.domain && NON_DIFFERENTIABLE.has(node.opType);
}

function differentiableInputs(rule: VjpRule, node: NodeSpec): number[] {
  return rule.differentiable === 'all' ? node.inputs.map((_, i) => i) : [...rule.differentiable];
}

/**
 * Appends d(output)/d(wrt[i]) for every i to `g` and returns those values (same shapes as the
 * inputs). An input the output does not depend on gets zeros.
 */
export function gradients(g: GraphBuilder, output: Value, wrt: readonly Value[], opts: GradientOptions = {}): Value[] {
  const forward = [...g.nodeList];
  const shapes = inferShapes(g);
  const ctx = new VjpContext(g, shapes);
  const factors = new Map((opts.scale ?? []).map((s) => [s.value.name, s.factor]));
  const detached = new Set([...factors].filter(([, f]) => f === 0).map(([name]) => name));

  // Which values depend on a requested input through differentiable edges.
  const requires = new Set(wrt.map((v) => v.name));
  for (const node of forward) {
    if (isNonDifferentiable(node)) continue;
    const rule = ruleOf(node);
    const candidates = rule ? differentiableInputs(rule, node) : node.inputs.map((_, i) => i);
    if (!candidates.some((i) => node.inputs[i] && requires.has(node.inputs[i]))) continue;
    const outs = rule?.outputs ?? node.outputs.map((_, i) => i);
    for (const i of outs) if (node.outputs[i] && !detached.has(node.outputs[i])) requires.add(node.outputs[i]);
  }

  const pending = new Map<string, Value[]>();
  const push = (name: string, v: Value) => {
    const list = pending.get(name);
    if (list) list.push(v);
    else pending.set(name, [v]);
  };
  const total = (name: string): Value | null => {
    const list = pending.get(name);
    if (!list) return null;
    pending.delete(name);
    const sum = list.length === 1 ? list[0] : g.op('Sum', list);
    const factor = factors.get(name);
    return factor === undefined || factor === 1 ? sum : g.op('Mul', [sum, g.scalarFloat(factor, 'grad_scale')]);
  };

  if (requires.has(output.name)) {
    push(output.name, opts.outputGrad ?? ctx.fill(output, 1));
  }

  g.scope('grad', () => {
    for (let n = forward.length - 1; n >= 0; n--) {
      const node = forward[n];
      if (!node.outputs.some((o) => pending.has(o))) continue;
      const rule = ruleOf(node);
      if (!rule) {
        if (isNonDifferentiable(node)) { node.outputs.forEach((o) => pending.delete(o)); continue; }
        throw new AutodiffError(`autodiff: no gradient rule for ${node.domain ? `${node.domain}::` : ''}${node.opType} (node ${node.name})`);
      }
      const allowed = new Set(differentiableInputs(rule, node));
      const needs = node.inputs.map((name, i) => !!name && allowed.has(i) && requires.has(name));
      if (!needs.some(Boolean)) { node.outputs.forEach((o) => pending.delete(o)); continue; }
      const gy = node.outputs.map((o) => total(o));
      const gx = rule.vjp(ctx, node, gy, needs);
      gx.forEach((v, i) => { if (v && needs[i]) push(node.inputs[i], v); });
    }
  });

  // an input on no path to the output has a zero gradient
  return g.scope('grad', () => wrt.map((v) => total(v.name) ?? ctx.zerosLike(v.name)));
}
