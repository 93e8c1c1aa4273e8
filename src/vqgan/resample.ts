/** taming Downsample / Upsample, both with a 3x3 conv (`resamp_with_conv=True`). */
import { attr, type Value } from '../onnx/graph.js';
import { conv2d, type VqganGraphContext } from './graph-context.js';

/** F.pad(x, (0, 1, 0, 1)) then a stride-2 3x3 conv without padding: the zero pad is the conv's own. */
export function downsample(ctx: VqganGraphContext, x: Value, prefix: string): Value {
  return conv2d(ctx, x, `${prefix}.conv`, { stride: 2, pads: [0, 0, 1, 1] });
}

/** F.interpolate(scale_factor=2, mode='nearest') then a 3x3 conv. */
export function upsample(ctx: VqganGraphContext, x: Value, prefix: string): Value {
  const { g } = ctx;
  const doubled = g.op('Resize', [x, null, g.constant('scales_x2', 'float32', [4], Float32Array.of(1, 1, 2, 2))], {
    mode: attr.string('nearest'),
    coordinate_transformation_mode: attr.string('asymmetric'),
    nearest_mode: attr.string('floor'),
  });
  return conv2d(ctx, doubled, `${prefix}.conv`);
}
