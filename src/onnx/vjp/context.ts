/**
 * What a vector-Jacobian rule sees: the builder to append backward nodes to, static shape
 * knowledge, and the helpers every rule group shares (undoing broadcasts, zeros, transposes).
 */
import { RudolphError } from '../../errors.js';
import { attr, Value, type GraphBuilder } from '../graph.js';
import type { NodeSpec, TensorProtoSpec } from '../proto.js';
import { sameDims, type Dims, type ShapeTable, type SymDim } from './shapes.js';

/** A graph cannot be differentiated (an operator without a rule, an unsupported attribute). */
export class AutodiffError extends RudolphError {
  constructor(message: string) {
    super('RUNTIME', message);
    this.name = 'AutodiffError';
  }
}

/**
 * One operator's gradient rule. `gy[i]` is the gradient of output i (null: none flows back);
 * `needs[j]` says whether input j wants a gradient. Returns one gradient (or null) per input.
 */
export interface VjpRule {
  /** Inputs that can carry a gradient (indices); the others (indices, shapes, masks) never do. */
  differentiable: readonly number[] | 'all';
  /** Outputs that carry a gradient (default: all). */
  outputs?: readonly number[];
  vjp(ctx: VjpContext, node: NodeSpec, gy: (Value | null)[], needs: boolean[]): (Value | null)[];
}

function floatTensor(value: number): { kind: 'tensor'; value: TensorProtoSpec } {
  return { kind: 'tensor', value: { name: 'value', dtype: 'float32', dims: [1], raw: new Uint8Array(Float32Array.of(value).buffer) } };
}

function int64Tensor(value: number): { kind: 'tensor'; value: TensorProtoSpec } {
  return { kind: 'tensor', value: { name: 'value', dtype: 'int64', dims: [1], raw: new Uint8Array(BigInt64Array.of(BigInt(value)).buffer) } };
}

export class VjpContext {
  constructor(readonly g: GraphBuilder, private readonly shapes: ShapeTable) {}

  /** Static dims of a forward value (null: rank unknown). */
  dims(v: Value | string): Dims {
    return this.shapes.dims(typeof v === 'string' ? v : v.name);
  }

  /** Rank of a forward value; rules that need it fail clearly when it is unknown. */
  rank(v: Value | string, node: NodeSpec): number {
    const d = this.dims(v);
    if (!d) throw new AutodiffError(`autodiff: the rank of ${typeof v === 'string' ? v : v.name} (input of ${node.opType} node ${node.name}) is not known statically`);
    return d.length;
  }

  /** Values of a constant int tensor, when every entry is known. */
  constInts(name: string): number[] | undefined {
    const v = this.shapes.ints(name);
    return v && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined;
  }

  op(opType: string, inputs: (Value | null)[], attributes: Parameters<GraphBuilder['op']>[2] = {}): Value {
    return this.g.op(opType, inputs, attributes);
  }

  scalar(value: number): Value { return this.g.scalarFloat(value, 'grad_const'); }

  ints(values: number[]): Value { return this.g.int64s(values, 'grad_axes'); }

  shape(v: Value | string): Value { return this.op('Shape', [asValue(v)]); }

  /** Float tensor of `value` with the run-time shape of `like`. */
  fill(like: Value | string, value: number): Value {
    return this.op('ConstantOfShape', [this.shape(like)], { value: floatTensor(value) });
  }

  zerosLike(like: Value | string): Value { return this.fill(like, 0); }

  /** int64 vector of ones of a run-time length (a scalar or [1] int64 value). */
  onesInt64(length: Value): Value {
    return this.op('ConstantOfShape', [this.op('Reshape', [length, this.ints([1])])], { value: int64Tensor(1) });
  }

  /** Swaps the last two axes. */
  transposeLast2(v: Value, rank: number): Value {
    const perm = Array.from({ length: rank }, (_, i) => i);
    [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
    return this.op('Transpose', [v], { perm: attr.ints(perm) });
  }

  reduceSum(v: Value, axes: number[], keepdims: boolean): Value {
    return this.op('ReduceSum', [v, this.ints(axes)], { keepdims: attr.int(keepdims ? 1 : 0) });
  }

  /**
   * Sums a gradient with dims `gradDims` back to the shape of `target` (undoing numpy
   * broadcasting): statically where the dims say which axes were broadcast, otherwise with
   * Shape/NonZero at run time.
   */
  unbroadcast(grad: Value, gradDims: Dims, target: string): Value {
    const td = this.dims(target);
    if (sameDims(gradDims, td)) return grad;
    if (gradDims && td && gradDims.length >= td.length) {
      const lead = gradDims.length - td.length;
      const keep: number[] = [];
      let unsure = false;
      td.forEach((d, i) => {
        const gd: SymDim = gradDims[lead + i];
        if (d === 1) { if (gd !== 1) keep.push(lead + i); return; }
        if (typeof d === 'number') return;
        if (d === null || d !== gd) unsure = true;
      });
      if (!unsure) {
        let out = grad;
        if (keep.length) out = this.reduceSum(out, keep, true);
        if (lead) out = this.reduceSum(out, Array.from({ length: lead }, (_, i) => i), false);
        return out;
      }
    }
    return this.unbroadcastDynamic(grad, gradDims, target);
  }

  private unbroadcastDynamic(grad: Value, gradDims: Dims, target: string): Value {
    const sx = this.shape(target);
    const td = this.dims(target);
    let padded: Value;
    if (gradDims && td) {
      const lead = gradDims.length - td.length;
      padded = lead > 0 ? this.op('Concat', [this.ints(Array(lead).fill(1)), sx], { axis: attr.int(0) }) : sx;
    } else {
      const diff = this.op('Sub', [this.op('Size', [this.shape(grad)]), this.op('Size', [sx])]);
      padded = this.op('Concat', [this.onesInt64(diff), sx], { axis: attr.int(0) });
    }
    const axes = this.op('Reshape', [this.op('NonZero', [this.op('Equal', [padded, this.ints([1])])]), this.ints([-1])]);
    const summed = this.op('ReduceSum', [grad, axes], { keepdims: attr.int(1), noop_with_empty_axes: attr.int(1) });
    return this.op('Reshape', [summed, sx]);
  }
}

export function asValue(v: Value | string): Value {
  return typeof v === 'string' ? new Value(v) : v;
}
