/**
 * `--stream` output: the candidates' texts as they are generated, one line each in candidate
 * order — the first candidate live, later ones (sampled alongside it in the same batch) from
 * their buffer as soon as the one before has ended — so every line is whole and in order.
 */
import type { TextToken } from '../generation/streaming.js';

export class CandidateLines {
  private readonly latest = new Map<number, { text: string; done: boolean }>();
  private current = 0;
  /** what is on the current line so far; null before its prefix is written */
  private shown: string | null = null;

  constructor(private readonly write: (s: string) => void) {}

  token(t: TextToken): void {
    this.latest.set(t.candidate, { text: t.text, done: t.done });
    for (;;) {
      const c = this.latest.get(this.current);
      if (!c) return;
      if (this.shown === null) {
        this.write(`${this.current + 1}: `);
        this.shown = '';
      }
      if (c.text.startsWith(this.shown)) this.write(c.text.slice(this.shown.length));
      // a decoded text that is not an extension of the last one (rare): start the line over
      else this.write(`\n${this.current + 1}: ${c.text}`);
      this.shown = c.text;
      if (!c.done) return;
      this.write('\n');
      this.latest.delete(this.current);
      this.current++;
      this.shown = null;
    }
  }
}
