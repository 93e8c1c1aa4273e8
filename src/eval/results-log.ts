/**
 * The results of an evaluation run, one JSON line per item, appended (and flushed to disk) after
 * every batch, so an interrupted run continues where it stopped: the first line records the
 * run's settings, and a rerun with the same settings skips the items already there. A line cut
 * by an interruption is dropped; other damage, or other settings, is an error naming the file.
 */
import { promises as fsp } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { DATA_LIMITS, DataError, readDataFile } from './datasets.js';

export type Settings = Record<string, unknown>;

export interface ItemLine { id: string }

export class ResultsLog<L extends ItemLine> {
  private constructor(readonly file: string, private readonly fh: fsp.FileHandle, readonly done: Map<string, L>) {}

  /**
   * Opens (or starts) the log of a run with these settings; `restart` discards what is there.
   * The items already done come back in `done`, by id.
   */
  static async open<L extends ItemLine>(file: string, settings: Settings, opts: { restart?: boolean } = {}): Promise<ResultsLog<L>> {
    let text = '';
    if (!opts.restart) {
      if (await fsp.stat(file).then(() => true, () => false)) text = (await readDataFile(file, DATA_LIMITS.text)).toString('utf8');
    }
    const done = new Map<string, L>();
    let keep = 0;
    if (text) {
      // a last line without its newline was cut by an interruption: dropped
      keep = text.lastIndexOf('\n') + 1;
      const lines = text.slice(0, keep).split('\n').slice(0, -1);
      let header: unknown;
      try { header = JSON.parse(lines[0] ?? ''); } catch { header = null; }
      const old = (header as { settings?: Settings } | null)?.settings;
      if (!old) throw new DataError([`${file}:1: not the header of a results file (use --restart to start over, or another --out)`]);
      if (!isDeepStrictEqual(old, settings)) {
        const differ = Object.keys({ ...old, ...settings }).filter((k) => !isDeepStrictEqual(old[k], settings[k]));
        throw new DataError([`${file}: these results were made with other settings (${differ.map((k) => `${k}: ${JSON.stringify(old[k])} → ${JSON.stringify(settings[k])}`).join('; ')}); use --restart to start over, or another --out`]);
      }
      lines.slice(1).forEach((raw, i) => {
        let line: L;
        try { line = JSON.parse(raw) as L; } catch { throw new DataError([`${file}:${i + 2}: not valid JSON (a damaged results file: use --restart)`]); }
        if (typeof line?.id !== 'string') throw new DataError([`${file}:${i + 2}: a result without an id (use --restart)`]);
        done.set(line.id, line);
      });
    }
    const fh = await fsp.open(file, text ? 'r+' : 'w');
    if (text) await fh.truncate(keep);
    else {
      await fh.write(`${JSON.stringify({ settings })}\n`, 0);
      keep = (await fh.stat()).size;
    }
    const log = new ResultsLog<L>(file, fh, done);
    log.offset = keep;
    return log;
  }

  private offset = 0;

  /** Appends the lines of a batch and flushes them to disk. */
  async append(lines: L[]): Promise<void> {
    const text = lines.map((l) => `${JSON.stringify(l)}\n`).join('');
    const { bytesWritten } = await this.fh.write(text, this.offset);
    this.offset += bytesWritten;
    await this.fh.datasync();
    for (const l of lines) this.done.set(l.id, l);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
