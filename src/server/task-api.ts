/**
 * API requests → facade calls → API responses (runs inside the inference worker): images are
 * decoded from base64 here and results are encoded back to base64 PNG, so the HTTP thread
 * only moves JSON.
 */
import { InputError } from '../errors.js';
import type { Rudolph } from '../rudolph.js';
import { encodePng, readImage } from '../runtime/node/image-files.js';
import { borderCells } from '../tasks/image-tokens.js';
import type { ImageInput } from '../tasks/inputs.js';
import type { RunControl } from '../util/progress.js';
import type { ApiImage, TaskInputs, TaskName, TaskOutputs } from './schemas.js';

export interface TaskLimits {
  /** largest width × height of an uploaded image */
  maxPixels: number;
}

const DATA_URL = /^data:[\w/+.-]*(;[\w=.-]+)*;base64,/;

/** An API image as the facade takes it; `field` names it in errors (e.g. "images[2]"). */
export async function decodeApiImage(img: ApiImage, field: string, limits: TaskLimits): Promise<ImageInput> {
  if (typeof img !== 'string') return { ids: img.ids };
  const bytes = Buffer.from(img.replace(DATA_URL, ''), 'base64');
  return readImage(bytes, { name: field, maxPixels: limits.maxPixels });
}

export async function runTask<K extends TaskName>(rudolph: Rudolph, task: K, input: TaskInputs[K], control: RunControl, limits: TaskLimits): Promise<TaskOutputs[K]> {
  // the map's shape ties each task to its own input and output types
  const run = HANDLERS[task] as Handler<K>;
  return run(rudolph, input, control, limits);
}

type Handler<K extends TaskName> = (r: Rudolph, input: TaskInputs[K], control: RunControl, limits: TaskLimits) => Promise<TaskOutputs[K]>;

const HANDLERS: { [K in TaskName]: Handler<K> } = {
  async 'dream'(r, i, control, limits) {
    const { imagePrompt, ...rest } = i;
    let prompt;
    if (imagePrompt) {
      const image = await decodeApiImage(imagePrompt.image, 'imagePrompt.image', limits);
      if ('ids' in image && imagePrompt.cropFirst) throw new InputError('imagePrompt.cropFirst: encodes a strip of an image; give an image, not token ids');
      prompt = 'ids' in image
        ? { ids: image.ids, cells: borderCells(r.config.n, imagePrompt.borders ?? {}) }
        : await r.imagePrompt(image, imagePrompt.borders ?? {}, imagePrompt.cropFirst ?? false);
    }
    const out = await r.dream({ ...rest, imagePrompt: prompt, ...control });
    const images = await Promise.all(out.images.map(async (d) => ({
      png: (await encodePng(d.image)).toString('base64'),
      width: d.image.width, height: d.image.height,
      score: d.score, pplText: d.pplText, pplImage: d.pplImage, candidate: d.candidate, codebook: Array.from(d.codebook),
    })));
    return { images, seed: out.seed };
  },
  async 'caption'(r, i, control, limits) {
    return r.caption({ ...i, image: await decodeApiImage(i.image, 'image', limits), ...control });
  },
  async 'classify'(r, i, control, limits) {
    return r.classify({ ...i, image: await decodeApiImage(i.image, 'image', limits), ...control });
  },
  async 'text'(r, i, control) {
    return r.generateText({ ...i, ...control });
  },
  async 'rank-images'(r, i, control, limits) {
    const images = await Promise.all(i.images.map((img, k) => decodeApiImage(img, `images[${k}]`, limits)));
    return r.rankImages({ ...i, images, ...control });
  },
  async 'rank-texts'(r, i, control, limits) {
    return r.rankTexts({ ...i, image: await decodeApiImage(i.image, 'image', limits), ...control });
  },
};
