/** Gradient rules of elementwise operators (with numpy broadcasting undone by `unbroadcast`). */
import { attr, type Value } from '../graph.js';
import type { NodeSpec } from '../proto.js';
import { AutodiffError, asValue, type VjpContext, type VjpRule } from './context.js';
import { attrString, broadcastDims } from './shapes.js';

const outDims = (ctx: VjpContext, node: NodeSpec) => ctx.dims(node.outputs[0]);

const add: VjpRule = {
  differentiable: [0, 1],
  vjp: (ctx, node, [gy], needs) => node.inputs.map((x, i) => (needs[i] ? ctx.unbroadcast(gy!, outDims(ctx, node), x) : null)),
};

const sub: VjpRule = {
  differentiable: [0, 1],
  vjp: (ctx, node, [gy], needs) => [
    needs[0] ? ctx.unbroadcast(gy!, outDims(ctx, node), node.inputs[0]) : null,
    needs[1] ? ctx.unbroadcast(ctx.op('Neg', [gy]), outDims(ctx, node), node.inputs[1]) : null,
  ],
};

const mul: VjpRule = {
  differentiable: [0, 1],
  vjp: (ctx, node, [gy], needs) => {
    const [a, b] = node.inputs.map(asValue);
    return [
      needs[0] ? ctx.unbroadcast(ctx.op('Mul', [gy, b]), outDims(ctx, node), a.name) : null,
      needs[1] ? ctx.unbroadcast(ctx.op('Mul', [gy, a]), outDims(ctx, node), b.name) : null,
    ];
  },
};

const div: VjpRule = {
  differentiable: [0, 1],
  vjp: (ctx, node, [gy], needs) => {
    const [a, b] = node.inputs.map(asValue);
    const y = asValue(node.outputs[0]);
    return [
      needs[0] ? ctx.unbroadcast(ctx.op('Div', [gy, b]), outDims(ctx, node), a.name) : null,
      // d(a/b)/db = -a/b² = -y/b
      needs[1] ? ctx.unbroadcast(ctx.op('Neg', [ctx.op('Div', [ctx.op('Mul', [gy, y]), b])]), outDims(ctx, node), b.name) : null,
    ];
  },
};

const where: VjpRule = {
  differentiable: [1, 2],
  vjp: (ctx, node, [gy], needs) => {
    const cond = asValue(node.inputs[0]);
    const zero = ctx.scalar(0);
    return [
      null,
      needs[1] ? ctx.unbroadcast(ctx.op('Where', [cond, gy, zero]), outDims(ctx, node), node.inputs[1]) : null,
      needs[2] ? ctx.unbroadcast(ctx.op('Where', [cond, zero, gy]), outDims(ctx, node), node.inputs[2]) : null,
    ];
  },
};

const identity: VjpRule = { differentiable: [0], vjp: (_ctx, _node, [gy]) => [gy] };

const neg: VjpRule = { differentiable: [0], vjp: (ctx, _node, [gy]) => [ctx.op('Neg', [gy])] };

/** The gradient passes where min ≤ x ≤ max (as torch.clamp). */
const clip: VjpRule = {
  differentiable: [0],
  vjp: (ctx, node, [gy]) => {
    const x = asValue(node.inputs[0]);
    const conds: Value[] = [];
    if (node.inputs[1]) conds.push(ctx.op('GreaterOrEqual', [x, asValue(node.inputs[1])]));
    if (node.inputs[2]) conds.push(ctx.op('LessOrEqual', [x, asValue(node.inputs[2])]));
    if (conds.length === 0) return [gy];
    const inside = conds.length === 2 ? ctx.op('And', conds) : conds[0];
    return [ctx.op('Where', [inside, gy, ctx.scalar(0)])];
  },
};

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * tanh form: y = ½x(1+t), t = tanh(c(x + 0.044715x³)) → y' = ½(1+t) + ½x(1-t²)·c(1 + 3·0.044715x²);
 * erf form: y' = Φ(x) + x·φ(x).
 */
const gelu: VjpRule = {
  differentiable: [0],
  vjp: (ctx, node, [gy]) => {
    const x = asValue(node.inputs[0]);
    const s = (v: number) => ctx.scalar(v);
    const x2 = ctx.op('Mul', [x, x]);
    let dydx: Value;
    if (attrString(node, 'approximate', 'none') === 'tanh') {
      const inner = ctx.op('Mul', [ctx.op('Mul', [x, s(SQRT_2_OVER_PI)]), ctx.op('Add', [s(1), ctx.op('Mul', [x2, s(0.044715)])])]);
      const t = ctx.op('Tanh', [inner]);
      const dInner = ctx.op('Mul', [s(SQRT_2_OVER_PI), ctx.op('Add', [s(1), ctx.op('Mul', [x2, s(3 * 0.044715)])])]);
      const sech2 = ctx.op('Sub', [s(1), ctx.op('Mul', [t, t])]);
      dydx = ctx.op('Add', [
        ctx.op('Mul', [s(0.5), ctx.op('Add', [s(1), t])]),
        ctx.op('Mul', [ctx.op('Mul', [s(0.5), x]), ctx.op('Mul', [sech2, dInner])]),
      ]);
    } else {
      const cdf = ctx.op('Mul', [s(0.5), ctx.op('Add', [s(1), ctx.op('Erf', [ctx.op('Mul', [x, s(Math.SQRT1_2)])])])]);
      const pdf = ctx.op('Mul', [s(1 / Math.sqrt(2 * Math.PI)), ctx.op('Exp', [ctx.op('Mul', [x2, s(-0.5)])])]);
      dydx = ctx.op('Add', [cdf, ctx.op('Mul', [x, pdf])]);
    }
    return [ctx.op('Mul', [gy, dydx])];
  },
};

/** y = x·mask/(1-ratio) in training mode, x otherwise; the rule needs the node's mask output. */
const dropout: VjpRule = {
  differentiable: [0],
  outputs: [0],
  vjp: (ctx, node, [gy]) => {
    const training = node.inputs[2];
    if (!training) return [gy];
    if (!node.outputs[1]) throw new AutodiffError(`autodiff: Dropout node ${node.name} must output its mask for gradients`);
    const ratio = node.inputs[1] ? asValue(node.inputs[1]) : ctx.scalar(0.5);
    const keep = ctx.op('Cast', [asValue(node.outputs[1])], { to: attr.int(1) });
    const scale = ctx.op('Div', [ctx.scalar(1), ctx.op('Sub', [ctx.scalar(1), ratio])]);
    return [ctx.op('Where', [asValue(training), ctx.op('Mul', [ctx.op('Mul', [gy, keep]), scale]), gy])];
  },
};

const expand: VjpRule = {
  differentiable: [0],
  vjp: (ctx, node, [gy]) => [ctx.unbroadcast(gy!, broadcastDims([ctx.dims(node.inputs[0]), ctx.dims(node.outputs[0])]), node.inputs[0])],
};

export const elementwiseRules: Record<string, VjpRule> = {
  Add: add, Sub: sub, Mul: mul, Div: div, Where: where, Identity: identity, Neg: neg, Clip: clip, Gelu: gelu, Dropout: dropout, Expand: expand,
};
