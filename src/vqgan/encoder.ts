/** taming Encoder: image [B, 3, H, W] in [-1, 1] → z [B, z_channels, H/f, W/f]. */
import type { Value } from '../onnx/graph.js';
import { encoderLevels, type VqganConfig } from './config.js';
import { conv2d, groupNorm, swish, type VqganGraphContext } from './graph-context.js';
import { attnBlock } from './attn-block.js';
import { downsample } from './resample.js';
import { resnetBlock } from './resnet-block.js';

export function encoder(ctx: VqganGraphContext, cfg: VqganConfig, x: Value): Value {
  return ctx.g.scope('encoder', () => {
    let h = conv2d(ctx, x, 'encoder.conv_in');
    for (const lv of encoderLevels(cfg)) {
      const p = `encoder.down.${lv.index}`;
      for (let b = 0; b < lv.blocks; b++) {
        h = resnetBlock(ctx, h, `${p}.block.${b}`);
        if (lv.attn) h = attnBlock(ctx, h, `${p}.attn.${b}`);
      }
      if (lv.resample) h = downsample(ctx, h, `${p}.downsample`);
    }
    h = resnetBlock(ctx, h, 'encoder.mid.block_1');
    h = attnBlock(ctx, h, 'encoder.mid.attn_1');
    h = resnetBlock(ctx, h, 'encoder.mid.block_2');
    return conv2d(ctx, swish(ctx, groupNorm(ctx, h, 'encoder.norm_out')), 'encoder.conv_out');
  });
}
