/**
 * GET /v1/jobs/:id/events: a job's life as Server-Sent Events. The stream opens with the
 * current state (and last progress), follows with `state` and `progress` events — and, for the
 * tasks that stream text (caption, text), a `token` event per sampled token (`{candidate, token,
 * text, delta, done}`: `text` is the candidate's whole text so far, so a late subscriber loses
 * nothing it needs) — and ends with one `done`, `failed` or `cancelled` event carrying the job
 * (for text tasks: the reranked result), then closes. Works the same on either backend (in
 * cluster mode the events come from BullMQ's event stream, so any front can follow any job).
 */
import type { FastifyReply } from 'fastify';
import type { JobBackend, JobEvent, JobView } from './backend.js';

const KEEP_ALIVE_MS = 15_000;

const isFinished = (v: JobView) => v.state === 'done' || v.state === 'failed' || v.state === 'cancelled';

/** Streams the job's events; false when there is no such job (nothing has been sent). */
export async function streamJobEvents(backend: JobBackend, id: string, reply: FastifyReply): Promise<boolean> {
  // events arriving before the stream is open are held, then sent in order
  let handle: ((e: JobEvent) => void) | null = null;
  const early: JobEvent[] = [];
  const watch = await backend.watch(id, (e) => (handle ? handle(e) : early.push(e)));
  if (!watch) return false;

  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  let seq = 0;
  let ended = false;
  const open = () => !res.writableEnded && !res.destroyed;
  const send = (event: string, data: unknown) => {
    if (open()) res.write(`id: ${++seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const keepAlive = setInterval(() => { if (open()) res.write(': keep-alive\n\n'); }, KEEP_ALIVE_MS);
  const cleanup = () => { clearInterval(keepAlive); watch.stop(); };
  const finish = (view: JobView) => {
    if (ended) return;
    ended = true;
    cleanup();
    send(view.state, view);
    if (open()) res.end();
  };
  res.once('close', cleanup);

  const { view } = watch;
  if (isFinished(view)) {
    finish(view);
    return true;
  }
  send('state', { state: view.state, ...(view.position !== undefined ? { position: view.position } : {}) });
  if (view.progress) send('progress', view.progress);
  handle = (e) => {
    if (ended) return;
    if (e.type === 'state') send('state', { state: e.state, ...(e.position !== undefined ? { position: e.position } : {}) });
    else if (e.type === 'progress') send('progress', e.progress);
    else if (e.type === 'token') send('token', e.token);
    else finish(e.job);
  };
  for (const e of early.splice(0)) handle(e);
  return true;
}
