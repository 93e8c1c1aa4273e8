/** Gradient rules of operators that move data without arithmetic: reshapes, transposes, slices, gathers. */
import { attr, type Value } from '../graph.js';
import { AutodiffError, asValue, type VjpRule } from './context.js';
import { attrInt, attrInts, normAxis } from './shapes.js';

/** Any op whose output holds exactly the input's elements in the same order. */
const reshapeLike: VjpRule = {
  differentiable: [0],
  vjp: (ctx, node, [gy]) => [ctx.op('Reshape', [gy, ctx.shape(node.inputs[0])])],
};

const transpose: VjpRule = {
  differentiable: [0],
  vjp: (ctx, node, [gy]) => {
    const rank = () => ctx.rank(node.inputs[0], node);
    const perm = attrInts(node, 'perm') ?? Array.from({ length: rank() }, (_, i) => rank() - 1 - i);
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, i) => { inverse[p] = i; });
    return [ctx.op('Transpose', [gy], { perm: attr.ints(inverse) })];
  },
};

const concat: VjpRule = {
  differentiable: 'all',
  vjp: (ctx, node, [gy], needs) => {
    const axis = attrInt(node, 'axis', 0);
    const sizes = node.inputs.map((x) => {
      const d = ctx.dims(x);
      return d ? d[normAxis(axis, d.length)] : null;
    });
    const split = sizes.every((s) => typeof s === 'number')
      ? ctx.ints(sizes as number[])
      : ctx.op('Concat', node.inputs.map((x) => ctx.op('Gather', [ctx.shape(x), ctx.ints([axis])], { axis: attr.int(0) })), { axis: attr.int(0) });
    const parts = ctx.g.opN('Split', [gy, split], { axis: attr.int(axis) }, node.inputs.length);
    return parts.map((p, i) => (needs[i] ? p : null));
  },
};

const split: VjpRule = {
  differentiable: [0],
  vjp: (ctx, node, gy) => {
    const parts = node.outputs.map((o, i) => gy[i] ?? ctx.zerosLike(o));
    return [ctx.op('Concat', parts, { axis: attr.int(attrInt(node, 'axis', 0)) })];
  },
};

/** Slice with unit steps: pad the gradient back with zeros (statically when dims allow). */
const slice: VjpRule = {
  differentiable: [0],
  vjp: (ctx, node, [gy]) => {
    const [data, startsIn, endsIn, axesIn, stepsIn] = node.inputs;
    const steps = stepsIn ? ctx.constInts(stepsIn) : undefined;
    if (stepsIn && (!steps || steps.some((s) => s !== 1))) throw new AutodiffError(`autodiff: Slice node ${node.name}: only constant unit steps are supported`);
    const starts = ctx.constInts(startsIn), ends = ctx.constInts(endsIn);
    const axes = axesIn ? ctx.constInts(axesIn) : starts?.map((_, i) => i);
    const dd = ctx.dims(data);
    if (starts && ends && axes && dd) {
      const dimsOk = axes.every((a) => typeof dd[normAxis(a, dd.length)] === 'number');
      if (dimsOk) {
        const begin: number[] = [], end: number[] = [];
        axes.forEach((a, i) => {
          const n = dd[normAxis(a, dd.length)] as number;
          const s = Math.max(0, Math.min(n, starts[i] < 0 ? starts[i] + n : starts[i]));
          const e = Math.max(s, Math.min(n, ends[i] < 0 ? ends[i] + n : ends[i]));
          begin.push(s); end.push(n - e);
        });
        return [ctx.op('Pad', [gy, ctx.ints([...begin, ...end]), ctx.scalar(0), ctx.ints(axes)])];
      }
    }
    // dynamic: clamp starts/ends into [0, dim] the way Slice does, pad with the remainder
    const axesV = axesIn ? asValue(axesIn) : ctx.op('Range', [ctx.g.scalarInt64(0), ctx.op('Size', [asValue(startsIn)]), ctx.g.scalarInt64(1)]);
    const dimsAx = ctx.op('Gather', [ctx.shape(data), axesV], { axis: attr.int(0) });
    const zero = ctx.ints([0]);
    const clampIdx = (v: Value) => {
      const wrapped = ctx.op('Where', [ctx.op('Less', [v, zero]), ctx.op('Add', [v, dimsAx]), v]);
      return ctx.op('Max', [ctx.op('Min', [wrapped, dimsAx]), zero]);
    };
    const s = clampIdx(asValue(startsIn));
    const e = ctx.op('Max', [clampIdx(asValue(endsIn)), s]);
    const pads = ctx.op('Concat', [s, ctx.op('Sub', [dimsAx, e])], { axis: attr.int(0) });
    return [ctx.op('Pad', [gy, pads, ctx.scalar(0), axesV])];
  },
};

/** Gather along axis 0: scatter-add the rows back (ScatterND reduction 'add' sums duplicate indices). */
const gather: VjpRule = {
  differentiable: [0],
  vjp: (ctx, node, [gy]) => {
    const [data, indices] = node.inputs;
    const axis = attrInt(node, 'axis', 0);
    if (axis !== 0 && normAxis(axis, ctx.rank(data, node)) !== 0) throw new AutodiffError(`autodiff: Gather node ${node.name}: only axis 0 is supported`);
    const idx = ctx.op('Unsqueeze', [asValue(indices), ctx.ints([-1])]);
    return [ctx.op('ScatterND', [ctx.zerosLike(data), idx, gy], { reduction: attr.string('add') })];
  },
};

export const shapeRules: Record<string, VjpRule> = {
  Reshape: reshapeLike, Flatten: reshapeLike, Unsqueeze: reshapeLike, Squeeze: reshapeLike,
  Transpose: transpose, Concat: concat, Split: split, Slice: slice, Gather: gather,
};
