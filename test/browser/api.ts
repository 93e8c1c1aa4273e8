/** What the test page offers the Node side (page-entry.ts implements it; plain data crosses). */
import type { RudolphParams } from '../../src/model/config.js';

export interface TokenRun { imageIds: number[][]; textIds: string[]; seedUsed: number }
export interface PageInfo { runtime: string; onnxruntime: string; isolated: boolean; cores: number }

export interface PageImage { width: number; height: number; data: number[] }
export interface PageError { error: { name: string; code?: string; message: string } }
export interface RangeReads { size: number; reads: number[][]; fromCacheOffline: number[] | PageError }

export interface RudolphTestApi {
  /** the web codec: file bytes → RGB, or the error it threw */
  decodeImage(bytes: number[], maxPixels?: number): Promise<PageImage | PageError>;
  /** the web codec: RGB → PNG bytes */
  encodePng(image: PageImage): Promise<number[]>;
  /** opens `url` as a ByteSource (with a Cache API store), reads `ranges`, then reopens it offline and reads the first range again */
  readRanges(url: string, ranges: [number, number][], cacheName: string): Promise<RangeReads | PageError>;
  info(): Promise<PageInfo>;
  /** Logits of a seeded random model at `precision` for `ids` (one row), as the page computes them. */
  forwardLogits(params: RudolphParams, weightSeed: number, precision: 'fp32' | 'int8' | 'fp16', ids: number[], device?: 'wasm' | 'webgpu'): Promise<number[]>;
  /** Seeded random model, then seeded image-token and text generation: the ids Node must reproduce. */
  tokensFromRandom(params: RudolphParams, weightSeed: number, taskSeed: number): Promise<TokenRun>;
}
