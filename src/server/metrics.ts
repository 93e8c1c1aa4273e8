/**
 * Prometheus metrics (prom-client), served at /metrics by fronts (and `rudolph serve`) and by
 * workers. Each process owns one registry; names are prefixed `rudolph_`. Fronts count HTTP
 * requests and end-to-end job latency and report the queue (collected on scrape); workers
 * report job run time, batch sizes, decoded tokens, model load time and their busy state.
 * Process memory, CPU and event-loop lag come from prom-client's default metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { JobBackend, JobState } from './backend.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export interface FrontMetrics {
  registry: Registry;
  request(method: string, route: string, status: number, seconds: number): void;
  /** a job this front saw end (synchronous requests and jobs followed by SSE) */
  jobEnded(task: string, state: JobState, seconds: number): void;
  submitted(task: string): void;
  rejected(code: string): void;
}

/** Metrics of an HTTP front; the queue gauges are read from the backend when scraped. */
export function frontMetrics(backend: JobBackend): FrontMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'rudolph_' });
  const http = new Histogram({
    name: 'rudolph_http_request_seconds', help: 'HTTP request latency', labelNames: ['method', 'route', 'status'] as const,
    buckets: LATENCY_BUCKETS, registers: [registry],
  });
  const jobs = new Histogram({
    name: 'rudolph_job_seconds', help: 'job latency from submission to its end, as seen by this front', labelNames: ['task', 'state'] as const,
    buckets: LATENCY_BUCKETS, registers: [registry],
  });
  const submitted = new Counter({ name: 'rudolph_jobs_submitted_total', help: 'jobs accepted', labelNames: ['task'] as const, registers: [registry] });
  const rejected = new Counter({ name: 'rudolph_requests_rejected_total', help: 'requests refused before queueing (429, 503)', labelNames: ['code'] as const, registers: [registry] });
  new Gauge({
    name: 'rudolph_queue_jobs', help: 'jobs in the queue by state (running, queued)', labelNames: ['state'] as const, registers: [registry],
    async collect() {
      const h = await backend.health().catch(() => undefined);
      if (!h?.queue) return;
      this.set({ state: 'running' }, h.queue.running);
      this.set({ state: 'queued' }, h.queue.queued);
    },
  });
  new Gauge({
    name: 'rudolph_workers', help: 'live workers for this front\'s model (cluster mode)', registers: [registry],
    async collect() {
      const h = await backend.health().catch(() => undefined);
      if (h?.queue?.workers !== undefined) this.set(h.queue.workers);
    },
  });
  new Gauge({
    name: 'rudolph_store_up', help: '1 when the job store (Redis) answers; always 1 in single-process mode', registers: [registry],
    async collect() {
      const h = await backend.health().catch(() => undefined);
      this.set(h && h.redis !== 'down' ? 1 : 0);
    },
  });
  return {
    registry,
    request: (method, route, status, seconds) => http.observe({ method, route, status: String(status) }, seconds),
    jobEnded: (task, state, seconds) => jobs.observe({ task, state }, seconds),
    submitted: (task) => submitted.inc({ task }),
    rejected: (code) => rejected.inc({ code }),
  };
}

export interface WorkerMetrics {
  registry: Registry;
  /** a job's run on this worker: outcome done, failed, cancelled or returned */
  jobRun(task: string, outcome: string, seconds: number): void;
  batch(task: string, size: number): void;
  tokens(task: string, n: number): void;
  modelLoaded(seconds: number): void;
  busy(jobs: number): void;
}

export function workerMetrics(): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'rudolph_' });
  const run = new Histogram({
    name: 'rudolph_job_run_seconds', help: 'time a job ran on this worker', labelNames: ['task', 'outcome'] as const,
    buckets: LATENCY_BUCKETS, registers: [registry],
  });
  const batch = new Histogram({
    name: 'rudolph_batch_size', help: 'jobs run together as one batch', labelNames: ['task'] as const,
    buckets: [1, 2, 3, 4, 6, 8, 12, 16, 32], registers: [registry],
  });
  const tokens = new Counter({
    name: 'rudolph_decoded_tokens_total', help: 'tokens decoded (all rows); rate() gives tokens/s', labelNames: ['task'] as const, registers: [registry],
  });
  const load = new Gauge({ name: 'rudolph_model_load_seconds', help: 'time the model took to load', registers: [registry] });
  const busy = new Gauge({ name: 'rudolph_worker_jobs', help: 'jobs this worker holds now', registers: [registry] });
  return {
    registry,
    jobRun: (task, outcome, seconds) => run.observe({ task, outcome }, seconds),
    batch: (task, size) => batch.observe({ task }, size),
    tokens: (task, n) => tokens.inc({ task }, n),
    modelLoaded: (seconds) => load.set(seconds),
    busy: (n) => busy.set(n),
  };
}
