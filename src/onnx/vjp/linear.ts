/** Gradient rules of MatMul (batched, broadcasting batch dims) and Gemm (any transA/transB). */
import { attr, type Value } from '../graph.js';
import { AutodiffError, asValue, type VjpRule } from './context.js';
import { attrFloat, attrInt, type Dims } from './shapes.js';

/** dims of a batched product whose last two axes are those of `like`. */
function withLast2(batchOf: Dims, like: Dims): Dims {
  return batchOf && like ? [...batchOf.slice(0, -2), ...like.slice(-2)] : null;
}

const matmul: VjpRule = {
  differentiable: [0, 1],
  vjp: (ctx, node, [gy], needs) => {
    const [a, b] = node.inputs.map(asValue);
    const ra = ctx.rank(a, node), rb = ctx.rank(b, node);
    if (ra < 2 || rb < 2) throw new AutodiffError(`autodiff: MatMul node ${node.name}: 1-D operands are not supported`);
    const dy = ctx.dims(node.outputs[0]);
    return [
      needs[0] ? ctx.unbroadcast(ctx.op('MatMul', [gy, ctx.transposeLast2(b, rb)]), withLast2(dy, ctx.dims(a)), a.name) : null,
      needs[1] ? ctx.unbroadcast(ctx.op('MatMul', [ctx.transposeLast2(a, ra), gy]), withLast2(dy, ctx.dims(b)), b.name) : null,
    ];
  },
};

/**
 * Y = α·op(A)·op(B) + β·C. With op(A)=A: dA = g·op(B)ᵀ; with op(A)=Aᵀ: dA = op(B)·gᵀ;
 * likewise dB = op(A)ᵀ·g or gᵀ·op(A). Each case is one Gemm with the right trans flags.
 */
const gemm: VjpRule = {
  differentiable: [0, 1, 2],
  vjp: (ctx, node, [gy], needs) => {
    const [a, b] = node.inputs.map(asValue);
    const tA = attrInt(node, 'transA', 0), tB = attrInt(node, 'transB', 0);
    const alpha = attrFloat(node, 'alpha', 1), beta = attrFloat(node, 'beta', 1);
    const gemmOf = (x: Value, y: Value, transA: number, transB: number) =>
      ctx.op('Gemm', [x, y], { transA: attr.int(transA), transB: attr.int(transB), ...(alpha !== 1 ? { alpha: attr.float(alpha) } : {}) });
    let da: Value | null = null, db: Value | null = null, dc: Value | null = null;
    if (needs[0]) da = tA ? gemmOf(b, gy!, tB, 1) : gemmOf(gy!, b, 0, tB ? 0 : 1);
    if (needs[1]) db = tB ? gemmOf(gy!, a, 1, tA) : gemmOf(a, gy!, tA ? 0 : 1, 0);
    if (needs[2]) {
      const scaled = beta !== 1 ? ctx.op('Mul', [gy, ctx.scalar(beta)]) : gy!;
      dc = ctx.unbroadcast(scaled, ctx.dims(node.outputs[0]), node.inputs[2]);
    }
    return [da, db, dc];
  },
};

export const linearRules: Record<string, VjpRule> = { MatMul: matmul, Gemm: gemm };
