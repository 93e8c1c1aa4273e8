/**
 * Reverse-mode autodiff over the graph builder: every VJP rule against central finite
 * differences of a float32 graph (loss = Σ y·w with a random w), small well-conditioned
 * problems, tolerance 2e-2 relative to the gradient's max-abs. Shapes are declared both static
 * and symbolic so the static and run-time broadcast/slice paths are both exercised.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { AutodiffError, gradients } from '../src/onnx/autodiff.js';
import { attr, type Dim, GraphBuilder, type Value } from '../src/onnx/graph.js';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}

interface Param { name: string; decl: Dim[]; dims: number[]; data?: Float32Array }
interface Extra { name: string; tensor: ort.Tensor; decl: Dim[]; dtype: 'float32' | 'int64' | 'bool' }

const numel = (d: number[]) => d.reduce((a, b) => a * b, 1);

/** Builds y = build(params), checks d(Σ y·w)/d(params) against central differences. */
async function checkGradients(params: Param[], outDims: number[], build: (g: GraphBuilder, p: Value[], extra: Value[]) => Value, extras: Extra[] = [], seed = 1): Promise<void> {
  const rnd = seeded(seed);
  const g = new GraphBuilder('vjp-test');
  const vals = params.map((p) => g.input(p.name, 'float32', p.decl));
  const extraVals = extras.map((e) => g.input(e.name, e.dtype, e.decl));
  const y = build(g, vals, extraVals);
  const w = g.input('w', 'float32', outDims);
  const loss = g.op('ReduceSum', [g.op('Mul', [y, w])], { keepdims: attr.int(0) });
  const grads = gradients(g, loss, vals);
  g.output(loss, 'loss', 'float32', []);
  grads.forEach((gv, i) => g.output(gv, `grad_${i}`, 'float32', params[i].decl));
  const session = await ort.InferenceSession.create(g.toBytes());
  const data = params.map((p) => p.data ?? Float32Array.from({ length: numel(p.dims) }, rnd));
  const wData = Float32Array.from({ length: numel(outDims) }, rnd);
  const feeds = (): Record<string, ort.Tensor> => ({
    ...Object.fromEntries(params.map((p, i) => [p.name, new ort.Tensor('float32', data[i], p.dims)])),
    ...Object.fromEntries(extras.map((e) => [e.name, e.tensor])),
    w: new ort.Tensor('float32', wData, outDims),
  });
  const out = await session.run(feeds());
  const lossAt = async () => ((await session.run(feeds(), ['loss'])).loss.data as Float32Array)[0];
  for (let k = 0; k < params.length; k++) {
    const analytic = out[`grad_${k}`].data as Float32Array;
    assert.equal(analytic.length, data[k].length, `${params[k].name}: gradient size`);
    let scale = 1e-3;
    for (const v of analytic) scale = Math.max(scale, Math.abs(v));
    for (let j = 0; j < data[k].length; j++) {
      const x0 = data[k][j];
      const eps = 1e-2;
      data[k][j] = x0 + eps;
      const up = await lossAt();
      data[k][j] = x0 - eps;
      const down = await lossAt();
      data[k][j] = x0;
      const fd = (up - down) / (2 * eps);
      assert.ok(Math.abs(fd - analytic[j]) <= 2e-2 * scale,
        `${params[k].name}[${j}]: analytic ${analytic[j]} vs finite difference ${fd} (scale ${scale})`);
    }
  }
  await session.release();
}

const p = (name: string, dims: number[], decl: Dim[] = dims, data?: Float32Array): Param => ({ name, dims, decl, data });

describe('elementwise rules', () => {
  for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
    test(`${op} with broadcasting (static dims)`, async () => {
      const positive = (n: number) => Float32Array.from({ length: n }, (_, i) => 1 + 0.1 * i);
      await checkGradients([p('a', [2, 3, 4]), p('b', [3, 1], [3, 1], op === 'Div' ? positive(3) : undefined)], [2, 3, 4],
        (g, [a, b]) => g.op(op, [a, b]));
    });
    test(`${op} with broadcasting decided at run time (symbolic dims)`, async () => {
      const positive = (n: number) => Float32Array.from({ length: n }, (_, i) => 1.5 + 0.1 * i);
      await checkGradients([p('a', [2, 3], ['m', 'n']), p('b', [1, 3], ['k', 'n'], op === 'Div' ? positive(3) : undefined)], [2, 3],
        (g, [a, b]) => g.op(op, [a, b]));
    });
  }
  test('Where routes the gradient by the condition, with a broadcast mask', async () => {
    const cond = new ort.Tensor('bool', Uint8Array.from([1, 0, 1, 1, 0, 0]), [2, 3]);
    await checkGradients([p('a', [2, 2, 3]), p('b', [3])], [2, 2, 3], (g, [a, b], [c]) => g.op('Where', [c, a, b]),
      [{ name: 'c', tensor: cond, decl: ['r', 3], dtype: 'bool' }]);
  });
  test('Clip passes the gradient only inside the bounds', async () => {
    const x = Float32Array.from([-2, -0.5, 0.2, 0.7, 1.8, 3]);
    await checkGradients([p('x', [6], [6], x)], [6], (g, [v]) => g.op('Clip', [v, g.scalarFloat(-1), g.scalarFloat(1)]));
  });
  test('Gelu, tanh approximation and exact', async () => {
    await checkGradients([p('x', [8])], [8], (g, [v]) => g.op('Gelu', [v], { approximate: attr.string('tanh') }));
    await checkGradients([p('x', [8])], [8], (g, [v]) => g.op('Gelu', [v]));
  });
  test('Neg, Identity, Expand', async () => {
    await checkGradients([p('x', [2, 3])], [2, 3], (g, [v]) => g.op('Neg', [g.op('Identity', [v])]));
    await checkGradients([p('x', [3, 1])], [2, 3, 4], (g, [v]) => g.op('Expand', [v, g.int64s([2, 3, 4])]));
  });
});

describe('linear rules', () => {
  test('MatMul, batched with a broadcast operand', async () => {
    await checkGradients([p('a', [2, 3, 4], ['b', 3, 4]), p('b', [4, 2])], [2, 3, 2], (g, [a, b]) => g.op('MatMul', [a, b]));
  });
  test('MatMul, 4-D attention-style', async () => {
    await checkGradients([p('a', [2, 2, 3, 2]), p('b', [2, 2, 2, 3])], [2, 2, 3, 3], (g, [a, b]) => g.op('MatMul', [a, b]));
  });
  for (const [transA, transB] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
    test(`Gemm transA=${transA} transB=${transB} with alpha, beta and a broadcast bias`, async () => {
      const a = transA ? [4, 3] : [3, 4];
      const b = transB ? [2, 4] : [4, 2];
      await checkGradients([p('a', a), p('b', b), p('c', [2])], [3, 2], (g, [x, y, c]) => g.op('Gemm', [x, y, c], {
        transA: attr.int(transA), transB: attr.int(transB), alpha: attr.float(0.7), beta: attr.float(1.3),
      }));
    });
  }
});

describe('shape rules', () => {
  test('Reshape, Transpose, Unsqueeze, Squeeze, Flatten', async () => {
    await checkGradients([p('x', [2, 3, 4])], [3, 8], (g, [x]) => {
      const t = g.op('Transpose', [x], { perm: attr.ints([1, 0, 2]) });
      const u = g.op('Squeeze', [g.op('Unsqueeze', [t, g.int64s([0])]), g.int64s([0])]);
      return g.op('Reshape', [g.op('Flatten', [u], { axis: attr.int(1) }), g.int64s([3, 8])]);
    });
  });
  test('Concat with symbolic sizes and Split with a missing output gradient', async () => {
    await checkGradients([p('a', [2, 2], [2, 'x']), p('b', [2, 3], [2, 'y'])], [2, 3], (g, [a, b]) => {
      const c = g.op('Concat', [a, b], { axis: attr.int(-1) });
      const [, s1] = g.opN('Split', [c, g.int64s([2, 3])], { axis: attr.int(1) }, 2);
      return s1;
    });
  });
  test('Slice with static dims and with dims known only at run time', async () => {
    const slice = (g: GraphBuilder, x: Value) => g.op('Slice', [x, g.int64s([1, -3]), g.int64s([3, 1000]), g.int64s([0, 1])]);
    await checkGradients([p('x', [4, 5])], [2, 3], (g, [x]) => slice(g, x));
    await checkGradients([p('x', [4, 5], ['r', 'c'])], [2, 3], (g, [x]) => slice(g, x));
  });
  test('Gather along axis 0 adds the gradients of repeated indices', async () => {
    const idx = new ort.Tensor('int64', BigInt64Array.from([2n, 0n, 2n, 2n, 3n, 0n]), [2, 3]);
    await checkGradients([p('table', [4, 3])], [2, 3, 3], (g, [t], [i]) => g.op('Gather', [t, i], { axis: attr.int(0) }),
      [{ name: 'idx', tensor: idx, decl: ['b', 3], dtype: 'int64' }]);
  });
});

describe('normalisation, softmax, losses, reductions', () => {
  test('LayerNormalization over the last axis (x, scale, bias)', async () => {
    await checkGradients([p('x', [3, 5], ['n', 5]), p('s', [5]), p('b', [5])], [3, 5],
      (g, [x, s, b]) => g.op('LayerNormalization', [x, s, b], { axis: attr.int(-1), epsilon: attr.float(1e-5) }));
  });
  test('Softmax over the last axis', async () => {
    await checkGradients([p('x', [2, 2, 4])], [2, 2, 4], (g, [x]) => g.op('Softmax', [x], { axis: attr.int(-1) }));
  });
  for (const reduction of ['none', 'mean', 'sum']) {
    test(`SoftmaxCrossEntropyLoss reduction=${reduction} with ignore_index`, async () => {
      const labels = new ort.Tensor('int64', BigInt64Array.from([1n, 0n, 3n, 2n, 0n]), [5]);
      await checkGradients([p('scores', [5, 4])], reduction === 'none' ? [5] : [], (g, [s], [l]) =>
        g.op('SoftmaxCrossEntropyLoss', [s, l], { reduction: attr.string(reduction), ignore_index: attr.int(0) }),
      [{ name: 'labels', tensor: labels, decl: ['n'], dtype: 'int64' }]);
    });
  }
  test('SoftmaxCrossEntropyLoss mean without ignore_index', async () => {
    const labels = new ort.Tensor('int64', BigInt64Array.from([1n, 0n, 3n]), [3]);
    await checkGradients([p('scores', [3, 4])], [], (g, [s], [l]) => g.op('SoftmaxCrossEntropyLoss', [s, l], { reduction: attr.string('mean') }),
      [{ name: 'labels', tensor: labels, decl: [3], dtype: 'int64' }]);
  });
  test('ReduceMean and ReduceSum: all axes, some axes, keepdims on and off', async () => {
    await checkGradients([p('x', [2, 3, 2])], [], (g, [x]) => g.op('ReduceMean', [x], { keepdims: attr.int(0) }));
    await checkGradients([p('x', [2, 3, 2])], [2, 2], (g, [x]) => g.op('ReduceMean', [x, g.int64s([1])], { keepdims: attr.int(0) }));
    await checkGradients([p('x', [2, 3, 2])], [2, 1, 1], (g, [x]) => g.op('ReduceSum', [x, g.int64s([-1, 1])], { keepdims: attr.int(1) }));
  });
});

describe('Dropout', () => {
  test('the gradient is the kept mask scaled by 1/(1-ratio), from the same run', async () => {
    const g = new GraphBuilder('dropout');
    const x = g.input('x', 'float32', [64]);
    const [y] = g.opN('Dropout', [x, g.scalarFloat(0.25), g.constant('train', 'bool', [], Uint8Array.of(1))], { seed: attr.int(3) }, 2);
    const w = g.input('w', 'float32', [64]);
    const loss = g.op('ReduceSum', [g.op('Mul', [y, w])], { keepdims: attr.int(0) });
    const [gx] = gradients(g, loss, [x]);
    g.output(y, 'y', 'float32', [64]);
    g.output(gx, 'gx', 'float32', [64]);
    const s = await ort.InferenceSession.create(g.toBytes());
    const xs = Float32Array.from({ length: 64 }, (_, i) => 1 + i);
    const ws = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) + 2);
    const out = await s.run({ x: new ort.Tensor('float32', xs, [64]), w: new ort.Tensor('float32', ws, [64]) });
    const ys = out.y.data as Float32Array, gs = out.gx.data as Float32Array;
    let dropped = 0;
    for (let i = 0; i < 64; i++) {
      const kept = ys[i] !== 0;
      if (!kept) dropped++;
      assert.ok(Math.abs(gs[i] - (kept ? ws[i] / 0.75 : 0)) < 1e-5, `element ${i}`);
      if (kept) assert.ok(Math.abs(ys[i] - xs[i] / 0.75) < 1e-4);
    }
    assert.ok(dropped > 0 && dropped < 64, `${dropped} of 64 dropped`);
    await s.release();
  });
});

describe('autodiff', () => {
  test('a gradient scale multiplies what flows back through a value; factor 0 detaches it', async () => {
    for (const factor of [0.1, 0]) {
      const g = new GraphBuilder('scale');
      const x = g.input('x', 'float32', [3]);
      const h = g.op('Mul', [x, x]);
      const loss = g.op('ReduceSum', [g.op('Add', [h, x])], { keepdims: attr.int(0) });
      const [gx] = gradients(g, loss, [x], { scale: [{ value: h, factor }] });
      g.output(gx, 'gx', 'float32', [3]);
      const s = await ort.InferenceSession.create(g.toBytes());
      const out = await s.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2, 3), [3]) });
      assert.deepEqual(Array.from(out.gx.data as Float32Array).map((v) => Math.round(v * 1e5) / 1e5), [1, 2, 3].map((v) => 1 + factor * 2 * v));
      await s.release();
    }
  });
  test('inputs the output does not depend on get zeros; nodes feeding only them are not differentiated', async () => {
    const g = new GraphBuilder('unused');
    const a = g.input('a', 'float32', [2]);
    const b = g.input('b', 'float32', [2]);
    g.op('Tanh', [b]); // no gradient rule, but off the path to the output
    const loss = g.op('ReduceSum', [g.op('Mul', [a, a])], { keepdims: attr.int(0) });
    const before = g.nodeList.length;
    const [ga, gb] = gradients(g, loss, [a, b]);
    g.output(ga, 'ga', 'float32', [2]);
    g.output(gb, 'gb', 'float32', [2]);
    const s = await ort.InferenceSession.create(g.toBytes());
    const out = await s.run({ a: new ort.Tensor('float32', Float32Array.of(1, -2), [2]), b: new ort.Tensor('float32', Float32Array.of(5, 6), [2]) });
    assert.deepEqual(Array.from(out.ga.data as Float32Array), [2, -4]);
    assert.deepEqual(Array.from(out.gb.data as Float32Array), [0, 0]);
    assert.ok(g.nodeList.length - before < 12, 'backward stays small');
    await s.release();
  });
  test('frozen inputs (not requested) add no backward nodes', () => {
    const build = (wrtBoth: boolean) => {
      const g = new GraphBuilder('frozen');
      const a = g.input('a', 'float32', [4, 4]);
      const b = g.input('b', 'float32', [4, 4]);
      const h = g.op('MatMul', [g.op('MatMul', [a, a]), b]);
      const loss = g.op('ReduceSum', [h], { keepdims: attr.int(0) });
      const before = g.nodeList.length;
      gradients(g, loss, wrtBoth ? [a, b] : [b]);
      return g.nodeList.slice(before).filter((n) => n.opType === 'MatMul').length;
    };
    assert.ok(build(false) < build(true), 'fewer MatMuls when a is frozen');
    assert.equal(build(false), 1, 'only dB = (a·a)ᵀ·g');
  });
  test('an operator without a rule on the path is a typed error naming it', () => {
    const g = new GraphBuilder('norule');
    const x = g.input('x', 'float32', [2]);
    const loss = g.op('ReduceSum', [g.op('Tanh', [x])], { keepdims: attr.int(0) });
    assert.throws(() => gradients(g, loss, [x]), (e: unknown) => e instanceof AutodiffError && /Tanh/.test((e as Error).message));
    const h = new GraphBuilder('domain');
    const a = h.input('a', 'float32', [2, 2]);
    const fused = h.op('FusedMatMul', [a, a], {}, 'com.microsoft');
    const out = h.op('ReduceSum', [fused], { keepdims: attr.int(0) });
    assert.throws(() => gradients(h, out, [a]), /no gradient rule for com\.microsoft::FusedMatMul/);
  });
});
