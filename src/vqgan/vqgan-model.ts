/**
 * Vqgan: the ruDALL-E Sber-VQGAN (taming GumbelVQ) on onnxruntime. `encode` turns
 * images into codebook ids exactly as the official `get_codebook_indices` (argmax of the
 * quantizer logits); `decode` turns ids back into images in [0, 1] as the official `decode`.
 * Encoder and decoder are two graphs in two sessions, each with dynamic batch and size.
 */
import { ConfigError, InputError } from '../errors.js';
import { assertRgbImage, fromFloatCHW, toFloatCHW, type RgbImage } from '../image/index.js';
import { f32, i64, Session, type SessionOptions } from '../onnx/session.js';
import type { StateDict } from '../tensor.js';
import { downsamplingFactor, validateVqganConfig, type VqganConfig } from './config.js';
import {
  buildDecodeGraph, buildEncodeGraph, DECODE_IO, ENCODE_IO, type DecodeIntermediate, type EncodeIntermediate,
} from './vqgan-graph.js';
import { vqganWeightsFromStateDict, type VqganWeights } from './weights.js';

/** Float images, NCHW, values in [0, 1] (what torchvision's ToTensor gives). */
export interface FloatImages {
  data: Float32Array;
  batch: number;
  height: number;
  width: number;
}

export type VqganImageInput = readonly RgbImage[] | FloatImages;

export interface FloatTensor {
  data: Float32Array;
  shape: number[];
}

export interface EncodeResult {
  /** [batch, rows·cols] codebook ids, row-major */
  ids: Int32Array;
  batch: number;
  rows: number;
  cols: number;
}

/** The code grid of the ids passed to `decode`; square (√n × √n) when omitted, as in the official code. */
export interface GridShape {
  rows?: number;
  cols?: number;
}

export type VqganOptions = SessionOptions;

/** Images ↔ image token ids: what tasks and fine-tuning need of the VQGAN. */
export interface ImageTokenizer {
  /** RGB images of equal size (a multiple of 8) → ids [B, (h/8)·(w/8)] */
  encode(images: RgbImage[]): Promise<Int32Array>;
  decodeToImages(ids: ArrayLike<number>, batch: number): Promise<RgbImage[]>;
}

export class Vqgan implements ImageTokenizer {
  /** pixels of image side per code (8 for Sber-VQGAN) */
  readonly factor: number;

  private constructor(readonly cfg: VqganConfig, private readonly encoder: Session, private readonly decoder: Session) {
    this.factor = downsamplingFactor(cfg);
  }

  /** Refuses a VQGAN that cannot serve a RUDOLPH with `imageVocab` image tokens (RUDOLPH's images are coded at ×8); `name` says which file. */
  checkFits(imageVocab: number, name: string): void {
    if (this.factor !== 8 || this.cfg.nEmbed < imageVocab) {
      throw new ConfigError(`VQGAN ${name} (factor ${this.factor}, ${this.cfg.nEmbed} codes) does not match the model's ${imageVocab} image tokens at ×8`);
    }
  }

  /**
   * From a state dict (official names; `loss.*` and other non-model entries are ignored);
   * `source` names it in errors. Checkpoint files: `loadVqgan` (pretrained/vqgan-files.ts).
   */
  static async fromWeights(config: VqganConfig, stateDict: StateDict, opts: VqganOptions = {}, source = 'state dict'): Promise<Vqgan> {
    const cfg = validateVqganConfig(config);
    return Vqgan.open(cfg, vqganWeightsFromStateDict(cfg, stateDict, source), opts);
  }

  /** Builds the encoder and decoder graphs and opens them (large graphs by path: RUNTIME.md). */
  private static async open(cfg: VqganConfig, weights: VqganWeights, opts: VqganOptions): Promise<Vqgan> {
    const sessions: Session[] = [];
    try {
      for (const [part, build] of [['encoder', buildEncodeGraph], ['decoder', buildDecodeGraph]] as const) {
        sessions.push(await Session.fromGraph(build(cfg, weights), `vqgan ${part}`, opts));
      }
      return new Vqgan(cfg, sessions[0], sessions[1]);
    } catch (e) {
      await Promise.all(sessions.map((s) => s.release()));
      throw e;
    }
  }

  /** Images → codebook ids [batch, (H/f)·(W/f)]. */
  async encode(images: VqganImageInput): Promise<Int32Array> {
    return (await this.runEncode(images, [])).ids;
  }

  /** `encode` plus the grid shape and the encoder_out / quant_conv_out / proj_logits tensors (debugging, parity checks). */
  async encodeWithIntermediates(images: VqganImageInput): Promise<EncodeResult & { intermediates: Record<EncodeIntermediate, FloatTensor> }> {
    const r = await this.runEncode(images, [...ENCODE_IO.intermediates]);
    return { ...r, intermediates: r.extra as Record<EncodeIntermediate, FloatTensor> };
  }

  /** Codebook ids [batch, rows·cols] → images NCHW in [0, 1], (rows·f) × (cols·f). */
  async decode(ids: ArrayLike<number>, batch: number, grid: GridShape = {}): Promise<FloatImages> {
    return (await this.runDecode(ids, batch, grid, [])).image;
  }

  /** `decode` plus the z / post_quant_conv_out / decoder_out (before the clamp) tensors. */
  async decodeWithIntermediates(ids: ArrayLike<number>, batch: number, grid: GridShape = {}): Promise<{ image: FloatImages; intermediates: Record<DecodeIntermediate, FloatTensor> }> {
    const r = await this.runDecode(ids, batch, grid, [...DECODE_IO.intermediates]);
    return { image: r.image, intermediates: r.extra as Record<DecodeIntermediate, FloatTensor> };
  }

  /** `decode`, then 8-bit RGB images the way the official `torch_tensors_to_pil_list` makes them. */
  async decodeToImages(ids: ArrayLike<number>, batch: number, grid: GridShape = {}): Promise<RgbImage[]> {
    const img = await this.decode(ids, batch, grid);
    const plane = img.data.length / img.batch;
    return Array.from({ length: img.batch }, (_, b) => fromFloatCHW(img.data.subarray(b * plane, (b + 1) * plane), img.width, img.height));
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.release(), this.decoder.release()]);
  }

  private async runEncode(images: VqganImageInput, fetch: string[]): Promise<EncodeResult & { extra: Record<string, FloatTensor> }> {
    const input = this.toFloatImages(images);
    const { batch, height, width } = input;
    const out = await this.encoder.run(
      { [ENCODE_IO.image]: f32(input.data, [batch, this.cfg.inChannels, height, width]) },
      [ENCODE_IO.indices, ...fetch]);
    const raw = out[ENCODE_IO.indices].data as BigInt64Array;
    const ids = new Int32Array(raw.length);
    for (let i = 0; i < raw.length; i++) ids[i] = Number(raw[i]);
    return { ids, batch, rows: height / this.factor, cols: width / this.factor, extra: floatTensors(out, fetch) };
  }

  private async runDecode(ids: ArrayLike<number>, batch: number, grid: GridShape, fetch: string[]): Promise<{ image: FloatImages; extra: Record<string, FloatTensor> }> {
    const { rows, cols } = this.gridOf(ids, batch, grid);
    const codes = new BigInt64Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.cfg.nEmbed) {
        throw new InputError(`vqgan decode: id ${id} at position ${i} is outside the codebook [0, ${this.cfg.nEmbed})`);
      }
      codes[i] = BigInt(id);
    }
    const out = await this.decoder.run({ [DECODE_IO.indices]: i64(codes, [batch, rows, cols]) }, [DECODE_IO.image, ...fetch]);
    const image: FloatImages = { data: out[DECODE_IO.image].data as Float32Array, batch, height: rows * this.factor, width: cols * this.factor };
    return { image, extra: floatTensors(out, fetch) };
  }

  private gridOf(ids: ArrayLike<number>, batch: number, grid: GridShape): { rows: number; cols: number } {
    if (!Number.isInteger(batch) || batch < 1) throw new InputError(`vqgan decode: batch must be a positive integer, got ${batch}`);
    const n = ids.length / batch;
    if (!Number.isInteger(n) || n < 1) throw new InputError(`vqgan decode: ${ids.length} ids do not form ${batch} equal non-empty rows`);
    let { rows, cols } = grid;
    if (rows === undefined && cols === undefined) {
      rows = cols = Math.round(Math.sqrt(n));
      if (rows * cols !== n) throw new InputError(`vqgan decode: ${n} ids per image are not a square grid; pass rows and cols`);
    }
    rows ??= n / cols!;
    cols ??= n / rows;
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1 || rows * cols !== n) {
      throw new InputError(`vqgan decode: a ${rows}×${cols} grid does not hold the ${n} ids per image`);
    }
    return { rows, cols };
  }

  private toFloatImages(images: VqganImageInput): FloatImages {
    const f = this.factor;
    const checkSize = (width: number, height: number) => {
      if (!Number.isInteger(width) || !Number.isInteger(height) || width < f || height < f || width % f !== 0 || height % f !== 0) {
        throw new InputError(`vqgan encode: image size ${width}×${height} is not a multiple of ${f} (the VQGAN's downsampling factor)`);
      }
    };
    if (isImageList(images)) {
      if (images.length === 0) throw new InputError('vqgan encode: no images');
      if (this.cfg.inChannels !== 3) throw new InputError(`vqgan encode: this VQGAN takes ${this.cfg.inChannels} channels, not RGB images`);
      const { width, height } = images[0];
      images.forEach((img, i) => {
        assertRgbImage(img, `image ${i}`);
        if (img.width !== width || img.height !== height) {
          throw new InputError(`vqgan encode: image ${i} is ${img.width}×${img.height}, image 0 is ${width}×${height}: a batch needs one size`);
        }
      });
      checkSize(width, height);
      const plane = 3 * width * height;
      const data = new Float32Array(images.length * plane);
      images.forEach((img, i) => toFloatCHW(img, data, i * plane));
      return { data, batch: images.length, height, width };
    }
    const { data, batch, height, width } = images;
    if (!Number.isInteger(batch) || batch < 1) throw new InputError(`vqgan encode: batch must be a positive integer, got ${batch}`);
    checkSize(width, height);
    const expected = batch * this.cfg.inChannels * height * width;
    if (!(data instanceof Float32Array) || data.length !== expected) {
      throw new InputError(`vqgan encode: ${batch}×${this.cfg.inChannels}×${height}×${width} float images need a Float32Array of ${expected} values, got ${data instanceof Float32Array ? data.length : typeof data}`);
    }
    return images;
  }
}

function isImageList(x: VqganImageInput): x is readonly RgbImage[] {
  return Array.isArray(x);
}

function floatTensors(out: Record<string, { data: unknown; dims: readonly number[] }>, names: string[]): Record<string, FloatTensor> {
  const r: Record<string, FloatTensor> = {};
  for (const n of names) r[n] = { data: out[n].data as Float32Array, shape: [...out[n].dims] };
  return r;
}
