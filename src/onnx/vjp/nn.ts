/** Gradient rules of normalisation, softmax, losses and reductions. */
import { attr, type Value } from '../graph.js';
import { AutodiffError, asValue, type VjpContext, type VjpRule } from './context.js';
import { attrFloat, attrInt, attrInts, attrString, normAxis } from './shapes.js';

/**
 * LayerNormalization, recomputing the statistics from x (the forward node has one output):
 * x̂ = (x-μ)·r, r = 1/√(σ²+ε); dScale = Σ g·x̂, dBias = Σ g,
 * dx = r·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)) with ĝ = g·scale (means over the normalised axes).
 */
const layerNorm: VjpRule = {
  differentiable: [0, 1, 2],
  outputs: [0],
  vjp: (ctx, node, [gy], needs) => {
    const [x, scale] = node.inputs.map(asValue);
    const rank = ctx.rank(x, node);
    const axis = normAxis(attrInt(node, 'axis', -1), rank);
    const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
    const mean = (v: Value) => ctx.op('ReduceMean', [v, ctx.ints(axes)], { keepdims: attr.int(1) });
    const xc = ctx.op('Sub', [x, mean(x)]);
    const variance = mean(ctx.op('Mul', [xc, xc]));
    const rstd = ctx.op('Reciprocal', [ctx.op('Sqrt', [ctx.op('Add', [variance, ctx.scalar(attrFloat(node, 'epsilon', 1e-5))])])]);
    const xhat = ctx.op('Mul', [xc, rstd]);
    const dx = ctx.dims(x);
    let gx: Value | null = null;
    if (needs[0]) {
      const gh = ctx.op('Mul', [gy, scale]);
      const centered = ctx.op('Sub', [ctx.op('Sub', [gh, mean(gh)]), ctx.op('Mul', [xhat, mean(ctx.op('Mul', [gh, xhat]))])]);
      gx = ctx.op('Mul', [centered, rstd]);
    }
    return [
      gx,
      needs[1] ? ctx.unbroadcast(ctx.op('Mul', [gy, xhat]), dx, node.inputs[1]) : null,
      needs[2] && node.inputs[2] ? ctx.unbroadcast(gy!, dx, node.inputs[2]) : null,
    ];
  },
};

/** dx = y·(g - Σ g·y) along the softmax axis. */
const softmax: VjpRule = {
  differentiable: [0],
  vjp: (ctx, node, [gy]) => {
    const y = asValue(node.outputs[0]);
    const axis = attrInt(node, 'axis', -1);
    const dot = ctx.op('ReduceSum', [ctx.op('Mul', [gy, y]), ctx.ints([axis])], { keepdims: attr.int(1) });
    return [ctx.op('Mul', [y, ctx.op('Sub', [gy, dot])])];
  },
};

/**
 * SoftmaxCrossEntropyLoss over scores [N, C]: d/dscores = (softmax - onehot(label)) times the
 * per-row weight of the reduction (g for 'none', g/count for 'mean', g for 'sum'), zero on
 * ignored rows. The one-hot subtraction is a ScatterElements add of -1, never a dense one-hot.
 */
const softmaxCrossEntropy: VjpRule = {
  differentiable: [0],
  outputs: [0],
  vjp: (ctx, node, [gy]) => {
    const [scoresName, labelsName, weightsName] = node.inputs;
    if (weightsName) throw new AutodiffError(`autodiff: SoftmaxCrossEntropyLoss node ${node.name}: class weights are not supported`);
    if (ctx.rank(scoresName, node) !== 2) throw new AutodiffError(`autodiff: SoftmaxCrossEntropyLoss node ${node.name}: only [N, C] scores are supported`);
    const scores = asValue(scoresName), labels = asValue(labelsName);
    const reduction = attrString(node, 'reduction', 'mean');
    const ignore = attrInt(node, 'ignore_index');
    const probs = ctx.op('Softmax', [scores], { axis: attr.int(1) });
    let valid: Value | null = null;
    let safe = labels;
    if (ignore !== undefined) {
      valid = ctx.op('Not', [ctx.op('Equal', [labels, ctx.g.scalarInt64(ignore)])]);
      safe = ctx.op('Where', [valid, labels, ctx.g.scalarInt64(0)]);
    }
    const column = ctx.op('Unsqueeze', [safe, ctx.ints([1])]);
    const diff = ctx.op('ScatterElements', [probs, column, ctx.fill(column, -1)], { axis: attr.int(1), reduction: attr.string('add') });
    const validF = valid ? ctx.op('Cast', [valid], { to: attr.int(1) }) : null;
    let rowWeight: Value;
    if (reduction === 'none') {
      rowWeight = gy!;
    } else if (reduction === 'mean' || reduction === 'sum') {
      let perRow = gy!;
      if (reduction === 'mean') {
        const count = validF
          ? ctx.op('Max', [ctx.op('ReduceSum', [validF], { keepdims: attr.int(0) }), ctx.scalar(1)])
          : ctx.op('Cast', [ctx.op('Size', [labels])], { to: attr.int(1) });
        perRow = ctx.op('Div', [perRow, count]);
      }
      rowWeight = ctx.op('Expand', [perRow, ctx.shape(labels)]);
    } else {
      throw new AutodiffError(`autodiff: SoftmaxCrossEntropyLoss node ${node.name}: unknown reduction ${reduction}`);
    }
    if (validF) rowWeight = ctx.op('Mul', [rowWeight, validF]);
    return [ctx.op('Mul', [diff, ctx.op('Unsqueeze', [rowWeight, ctx.ints([1])])])];
  },
};

/** The reduced axes of a ReduceX node (normalised), or 'all' / 'none'. */
function reducedAxes(ctx: VjpContext, node: Parameters<VjpRule['vjp']>[1]): number[] | 'all' | 'none' {
  const axesInput = node.inputs[1];
  let axes = attrInts(node, 'axes');
  if (!axes && axesInput) {
    axes = ctx.constInts(axesInput);
    if (!axes) throw new AutodiffError(`autodiff: ${node.opType} node ${node.name}: axes must be constant`);
  }
  if (!axes || axes.length === 0) return attrInt(node, 'noop_with_empty_axes', 0) === 1 ? 'none' : 'all';
  const rank = ctx.rank(node.inputs[0], node);
  return axes.map((a) => normAxis(a, rank));
}

/** Broadcasts the reduced gradient back over the input's shape. */
function spreadBack(ctx: VjpContext, node: Parameters<VjpRule['vjp']>[1], gy: Value): Value {
  const axes = reducedAxes(ctx, node);
  if (axes === 'none') return gy;
  const x = node.inputs[0];
  const keep = attrInt(node, 'keepdims', 1) === 1;
  const g = !keep && axes !== 'all' ? ctx.op('Unsqueeze', [gy, ctx.ints(axes)]) : gy;
  return ctx.op('Expand', [g, ctx.shape(x)]);
}

const reduceSum: VjpRule = { differentiable: [0], vjp: (ctx, node, [gy]) => [spreadBack(ctx, node, gy!)] };

const reduceMean: VjpRule = {
  differentiable: [0],
  vjp: (ctx, node, [gy]) => {
    const count = ctx.op('Div', [
      ctx.op('Cast', [ctx.op('Size', [asValue(node.inputs[0])])], { to: attr.int(1) }),
      ctx.op('Cast', [ctx.op('Size', [asValue(node.outputs[0])])], { to: attr.int(1) }),
    ]);
    return [ctx.op('Div', [spreadBack(ctx, node, gy!), count])];
  },
};

export const nnRules: Record<string, VjpRule> = {
  LayerNormalization: layerNorm, Softmax: softmax, SoftmaxCrossEntropyLoss: softmaxCrossEntropy, ReduceSum: reduceSum, ReduceMean: reduceMean,
};
