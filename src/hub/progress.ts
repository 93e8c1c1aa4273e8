/** One progress report for one file; `loaded` counts bytes already on disk from an earlier, resumed run. */
export interface DownloadProgress {
  repo: string;
  /** Path of the file inside the repo. */
  file: string;
  loaded: number;
  /** Size announced by the hub; null when it announced none. */
  total: number | null;
  /** Transfer rate over the last few seconds (0 until it can be measured). */
  bytesPerSecond: number;
  /** Seconds left at the current rate; null when unknown. */
  etaSeconds: number | null;
  /** True on the last report of a file (after it was verified and became visible). */
  done: boolean;
  /** True when the file was already cached and nothing was transferred. */
  fromCache: boolean;
}

export type ProgressCallback = (progress: DownloadProgress) => void;

const RATE_WINDOW_MS = 5000;

/**
 * Throttles reports to one per `intervalMs` and measures the rate over a sliding window, so a
 * resumed download does not report the already-present bytes as speed.
 */
export class ProgressTracker {
  private samples: Array<{ t: number; loaded: number }> = [];
  private lastEmit = 0;
  private loaded = 0;

  constructor(
    private readonly repo: string,
    private readonly file: string,
    private readonly total: number | null,
    private readonly callback: ProgressCallback | undefined,
    private readonly intervalMs = 100,
  ) {}

  update(loaded: number): void {
    if (!this.callback) return;
    const now = performance.now();
    if (loaded < this.loaded) this.samples = []; // restarted from zero: the old rate means nothing
    this.loaded = loaded;
    this.samples.push({ t: now, loaded });
    while (this.samples.length > 2 && now - this.samples[0].t > RATE_WINDOW_MS) this.samples.shift();
    if (now - this.lastEmit < this.intervalMs) return;
    this.lastEmit = now;
    this.emit(false);
  }

  finish(fromCache = false): void {
    if (this.total !== null) this.loaded = this.total;
    this.emit(true, fromCache);
  }

  private emit(done: boolean, fromCache = false): void {
    if (!this.callback) return;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const seconds = first && last ? (last.t - first.t) / 1000 : 0;
    const bytesPerSecond = seconds > 0.05 ? (last.loaded - first.loaded) / seconds : 0;
    const etaSeconds = done ? 0 : this.total !== null && bytesPerSecond > 0 ? Math.max(0, this.total - this.loaded) / bytesPerSecond : null;
    this.callback({ repo: this.repo, file: this.file, loaded: this.loaded, total: this.total, bytesPerSecond, etaSeconds, done, fromCache });
  }
}
