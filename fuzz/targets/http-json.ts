/**
 * JSON bodies → every POST endpoint of the service (the six tasks and /v1/jobs), in-process on
 * 127.0.0.1 with the small random model: valid requests, structure-aware mutations (a value
 * replaced by something hostile, keys added or dropped), byte mutations of the JSON text, and
 * now and then another content type.
 */
import { capCost, encodeInput, httpTarget, seedBody, TASK_PATHS } from '../lib/http.js';
import { mutate } from '../lib/mutate.js';
import { mutateTree } from '../lib/seeds.js';

const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream', 'application/json; charset=latin1', ''];

export const target = httpTarget(
  'http-json',
  'JSON request bodies → POST /v1/{dream,caption,classify,text,rank-images,rank-texts,jobs} of an in-process server',
  (rng) => {
    const taskPath = rng.pick(TASK_PATHS);
    const jobs = rng.chance(0.25);
    let body: unknown = seedBody(taskPath, rng);
    if (jobs) body = { task: taskPath.slice(4), input: body };
    const r = rng.next();
    if (r < 0.5) {
      const rounds = 1 + rng.int(3);
      for (let k = 0; k < rounds; k++) body = mutateTree(rng, body);
    }
    let bytes: Uint8Array = new TextEncoder().encode(JSON.stringify(capCost(body)));
    if (r >= 0.5 && r < 0.75) bytes = mutate(rng, bytes);
    const contentType = rng.chance(0.95) ? CONTENT_TYPES[0] : rng.pick(CONTENT_TYPES);
    return encodeInput(jobs ? '/v1/jobs' : taskPath, contentType, bytes);
  },
);
