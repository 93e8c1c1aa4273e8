/** taming Decoder: z [B, z_channels, h, w] → image [B, out_ch, h·f, w·f] (before the clamp). */
import type { Value } from '../onnx/graph.js';
import { decoderLevels, type VqganConfig } from './config.js';
import { conv2d, groupNorm, swish, type VqganGraphContext } from './graph-context.js';
import { attnBlock } from './attn-block.js';
import { upsample } from './resample.js';
import { resnetBlock } from './resnet-block.js';

export function decoder(ctx: VqganGraphContext, cfg: VqganConfig, z: Value): Value {
  return ctx.g.scope('decoder', () => {
    let h = conv2d(ctx, z, 'decoder.conv_in');
    h = resnetBlock(ctx, h, 'decoder.mid.block_1');
    h = attnBlock(ctx, h, 'decoder.mid.attn_1');
    h = resnetBlock(ctx, h, 'decoder.mid.block_2');
    for (const lv of decoderLevels(cfg)) {
      const p = `decoder.up.${lv.index}`;
      for (let b = 0; b < lv.blocks; b++) {
        h = resnetBlock(ctx, h, `${p}.block.${b}`);
        if (lv.attn) h = attnBlock(ctx, h, `${p}.attn.${b}`);
      }
      if (lv.resample) h = upsample(ctx, h, `${p}.upsample`);
    }
    return conv2d(ctx, swish(ctx, groupNorm(ctx, h, 'decoder.norm_out')), 'decoder.conv_out');
  });
}
