/**
 * Helpers for the cluster tests: a real redis-server on a free loopback port with a temp dir
 * (append-only file, fsync always, so a restart keeps the queue), and fronts and workers as
 * separate `rudolph serve --redis` / `rudolph worker` processes on the small random model.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Rudolph } from '../src/rudolph.js';
import { SMALL_TOKENIZER, tempDir, TINY_VQGAN_DIR, writeSmallModel } from './fixtures.js';
import { REPO_ROOT } from './helpers.js';
import { sleep } from './server-fixture.js';

export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Sends PING; true when Redis answers PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => { s.destroy(); resolve(ok); };
    s.setTimeout(500, () => done(false));
    s.once('error', () => done(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

export class RedisServer {
  private proc: ChildProcess | null = null;
  private constructor(readonly port: number, readonly dir: string, private readonly cleanup: () => Promise<void>) {}

  get url(): string { return `redis://127.0.0.1:${this.port}`; }

  static async start(): Promise<RedisServer> {
    const { dir, cleanup } = await tempDir('rudolph-redis-');
    const r = new RedisServer(await freePort(), dir, cleanup);
    await r.resume();
    return r;
  }

  /** Starts (again) on the same port and dir: the append-only file brings the data back. */
  async resume(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'yes',
      '--appendfsync', 'always', '--daemonize', 'no', '--logfile', path.join(this.dir, 'redis.log'), '--protected-mode', 'yes'];
    this.proc = spawn('redis-server', args, { stdio: 'ignore' });
    const end = performance.now() + 10_000;
    while (!(await ping(this.port))) {
      if (this.proc.exitCode !== null) throw new Error(`redis-server exited (${this.proc.exitCode}); see ${this.dir}/redis.log`);
      if (performance.now() > end) throw new Error('redis-server did not answer within 10 s');
      await sleep(50);
    }
  }

  /** Stops Redis (SIGTERM: it flushes the append-only file) and waits for the exit. */
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    const exited = once(p, 'exit');
    p.kill('SIGTERM');
    await exited;
  }

  async close(): Promise<void> {
    await this.stop();
    await this.cleanup();
  }
}

/** The small model written to a folder, converted once (so processes sharing the cache do not race). */
export interface ModelFolder { dir: string; cacheDir: string; cleanup: () => Promise<void> }

export async function smallModelFolder(): Promise<ModelFolder> {
  const { dir, cleanup } = await tempDir('rudolph-cluster-model-');
  await writeSmallModel(dir);
  const cacheDir = path.join(dir, 'cache');
  const r = await Rudolph.fromPretrained(dir, { tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir });
  await r.release();
  return { dir, cacheDir, cleanup };
}

export function modelArgs(m: ModelFolder): string[] {
  // fp32 like the single-process baseline (startServer from the library); the CLI's default is int8.
  // Fronts and workers must agree: the precision is part of the queue name.
  return ['--model', m.dir, '--tokenizer', SMALL_TOKENIZER, '--vqgan', TINY_VQGAN_DIR, '--cache-dir', m.cacheDir, '--precision', 'fp32'];
}

/** A `rudolph …` process with its JSON log lines collected. */
export class RudolphProcess {
  readonly lines: Record<string, unknown>[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  private waiters: { test: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];

  constructor(readonly name: string, readonly proc: ChildProcess) {
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
    createInterface({ input: proc.stderr! }).on('line', (line) => {
      this.stderr.push(line);
      if (!line.startsWith('{')) return;
      let l: Record<string, unknown>;
      try { l = JSON.parse(line) as Record<string, unknown>; } catch { return; }
      this.lines.push(l);
      this.waiters = this.waiters.filter((w) => (w.test(l) ? (w.resolve(l), false) : true));
    });
  }

  /** The first log line (past or future) passing `test`. */
  waitLog(test: (l: Record<string, unknown>) => boolean, timeoutMs = 60_000, what = 'a log line'): Promise<Record<string, unknown>> {
    const seen = this.lines.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; stderr:\n${this.stderr.slice(-30).join('\n')}`)), timeoutMs);
      const w = { test, resolve: (l: Record<string, unknown>) => { clearTimeout(timer); resolve(l); } };
      this.waiters.push(w);
      void this.exited.then((code) => {
        if (!this.waiters.includes(w)) return;
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code}) before ${what}; stderr:\n${this.stderr.slice(-30).join('\n')}`));
      });
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
  }

  async stop(): Promise<number | null> {
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), 15_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

function rudolph(name: string, args: string[], env: Record<string, string> = {}): RudolphProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join('src', 'cli', 'main.ts'), ...args], {
    cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new RudolphProcess(name, proc);
}

export interface Front extends RudolphProcess { url: string }

/** `rudolph serve --redis` on a free port; resolves once it listens. */
export async function startFront(redisUrl: string, m: ModelFolder, extra: string[] = [], name = 'front'): Promise<Front> {
  const p = rudolph(name, ['serve', '--redis', redisUrl, '--port', '0', ...modelArgs(m), ...extra]);
  const line = await p.waitLog((l) => l.msg === 'serving', 60_000, 'serving line');
  return Object.assign(p, { url: line.url as string });
}

/** `rudolph worker` with one onnxruntime thread; resolves once it takes jobs. */
export async function startWorkerProcess(redisUrl: string, m: ModelFolder, extra: string[] = [], name = 'worker'): Promise<RudolphProcess> {
  const p = rudolph(name, ['worker', '--redis', redisUrl, ...modelArgs(m), '--threads', '1', ...extra]);
  await p.waitLog((l) => l.msg === 'worker ready', 120_000, 'worker ready line');
  return p;
}

/** Removes a folder tree, ignoring errors (temp dirs of killed processes). */
export async function removeQuietly(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true }).catch(() => {});
}
