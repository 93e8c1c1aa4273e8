/**
 * CLI plumbing shared by every command: progress bars on stderr, --json output on stdout,
 * errors → messages and exit codes.
 */
import cliProgress from 'cli-progress';
import { RudolphError } from '../errors.js';

export const EXIT = { ok: 0, failure: 1, badInput: 2, network: 3, aborted: 130, terminated: 143 } as const;

/** Exit code for an error: bad input 2, network/offline 3, aborted 130, anything else 1. */
export function exitCodeOf(e: unknown): number {
  if (e instanceof RudolphError) {
    switch (e.code) {
      case 'INPUT': case 'IMAGE': case 'CONFIG': case 'TOKENIZER': case 'CHECKPOINT': case 'WEIGHTS': case 'TRAINING': case 'LIMIT': return EXIT.badInput;
      case 'DOWNLOAD': case 'OFFLINE': case 'INTEGRITY': return EXIT.network;
      case 'ABORTED': return EXIT.aborted;
      default: return EXIT.failure;
    }
  }
  const code = (e as { code?: string } | null)?.code;
  if (typeof code === 'string' && code.startsWith('commander.')) return EXIT.badInput;
  return EXIT.failure;
}

export function errorMessage(e: unknown): string {
  if (e instanceof RudolphError) return `rudolph: ${e.message}`;
  if (e instanceof Error) return `rudolph: unexpected error: ${e.stack ?? e.message}`;
  return `rudolph: unexpected error: ${String(e)}`;
}

/** One progress bar at a time on stderr; plain stage lines when stderr is not a terminal. */
export class ProgressDisplay {
  private bar: cliProgress.SingleBar | null = null;
  private label = '';
  private lastLine = 0;
  constructor(private readonly quiet = false) {}

  update(label: string, done: number, total: number, suffix = ''): void {
    if (this.quiet) return;
    if (!process.stderr.isTTY) {
      const now = Date.now();
      if (label !== this.label || done >= total || now - this.lastLine > 2000) {
        process.stderr.write(`${label}: ${done}/${total}${suffix ? ` ${suffix}` : ''}\n`);
        this.lastLine = now;
      }
      this.label = label;
      return;
    }
    if (label !== this.label || !this.bar) {
      this.stop();
      this.bar = new cliProgress.SingleBar({
        stream: process.stderr, format: `${label} [{bar}] {percentage}% {value}/{total} {suffix}`, hideCursor: true, clearOnComplete: false,
      }, cliProgress.Presets.shades_classic);
      this.bar.start(Math.max(total, 1), done, { suffix });
      this.label = label;
    }
    this.bar.setTotal(Math.max(total, 1));
    this.bar.update(done, { suffix });
  }

  note(line: string): void {
    if (this.quiet) return;
    this.stop();
    process.stderr.write(`${line}\n`);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
    this.label = '';
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_, v) => (v instanceof Int32Array ? Array.from(v) : v), 1)}\n`);
}
