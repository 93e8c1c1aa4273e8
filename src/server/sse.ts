/**
 * GET /v1/jobs/:id/events: a job's life as Server-Sent Events. The stream opens with the
 * current state (and last progress), follows with `state` and `progress` events — and, for the
 * tasks that stream text (caption, text), a `token` event per sampled token (`{candidate, token,
 * text, delta, done}`: `text` is the candidate's whole text so far, so a late subscriber loses
 * nothing it needs) — and ends with one `done`, `failed` or `cancelled` event carrying the job
 * (for text tasks: the reranked result), then closes.
 */
import type { FastifyReply } from 'fastify';
import type { Job, JobQueue, JobView } from './jobs.js';

const KEEP_ALIVE_MS = 15_000;

export function streamJobEvents(queue: JobQueue, job: Job, reply: FastifyReply): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  let seq = 0;
  const open = () => !res.writableEnded && !res.destroyed;
  const send = (event: string, data: unknown) => {
    if (open()) res.write(`id: ${++seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const finish = (view: JobView) => {
    send(view.state, view);
    if (open()) res.end();
  };

  if (job.isFinished) return finish(queue.view(job));
  send('state', { state: job.state, ...(job.state === 'queued' ? { position: queue.position(job) } : {}) });
  if (job.progress) send('progress', job.progress);

  const keepAlive = setInterval(() => { if (open()) res.write(': keep-alive\n\n'); }, KEEP_ALIVE_MS);
  const unsubscribe = job.subscribe((e) => {
    if (e.type === 'state') send('state', { state: e.state, ...(e.position !== undefined ? { position: e.position } : {}) });
    else if (e.type === 'progress') send('progress', e.progress);
    else if (e.type === 'token') send('token', e.token);
    else { cleanup(); finish(e.job); }
  });
  const cleanup = () => { clearInterval(keepAlive); unsubscribe(); };
  res.once('close', cleanup);
}
