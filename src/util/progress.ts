/** Progress reporting and cancellation of long runs (tasks, generation). */
import { throwIfAborted } from '../errors.js';

export interface Progress {
  task: string;
  stage: string;
  done: number;
  total: number;
}

/** Options every long-running call accepts. */
export interface RunControl {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

/** Counts steps of a task's stages, reports them and checks for cancellation at every tick. */
export class ProgressReporter {
  private done = 0;
  constructor(private readonly ctl: RunControl, readonly task: string, private stage: string, private total: number) {
    throwIfAborted(ctl.signal);
    this.emit();
  }
  begin(stage: string, total: number): void { this.stage = stage; this.total = total; this.done = 0; this.emit(); }
  tick(n = 1): void { this.done += n; this.emit(); throwIfAborted(this.ctl.signal); }
  check(): void { throwIfAborted(this.ctl.signal); }
  private emit(): void { this.ctl.onProgress?.({ task: this.task, stage: this.stage, done: this.done, total: this.total }); }
}
