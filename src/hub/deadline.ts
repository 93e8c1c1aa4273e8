/**
 * A per-request timer we own. `AbortSignal.any([AbortSignal.timeout(ms), signal])` looks the same
 * but its timeout signal is only weakly held: once garbage-collected it never fires, and a server
 * that accepts the connection and stays silent hangs the request forever. Here the timer is a
 * plain setTimeout, cleared in `dispose()`, and the caller's signal is linked by a listener.
 */

/** Which wait ran out: the connection + response headers, or the gap between body chunks. */
export type DeadlinePhase = 'response' | 'data';

/** Thrown (as the fetch abort reason) when a Deadline runs out. */
export class HubTimeoutError extends Error {
  constructor(readonly phase: DeadlinePhase, readonly ms: number) {
    super(phase === 'response' ? `no response within ${seconds(ms)} s` : `no data for ${seconds(ms)} s`);
    this.name = 'HubTimeoutError';
  }
}

export function seconds(ms: number): string {
  return String(Math.round(ms) / 1000);
}

export class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private phase: DeadlinePhase = 'response';
  private readonly onParentAbort = (): void => this.controller.abort(this.parent?.reason);

  /** Starts the clock for `ms` (connect + headers); `parent` aborts the request too. */
  constructor(readonly ms: number, private readonly parent?: AbortSignal) {
    this.timer = setTimeout(() => this.controller.abort(new HubTimeoutError(this.phase, ms)), ms);
    if (parent?.aborted) this.onParentAbort();
    else parent?.addEventListener('abort', this.onParentAbort, { once: true });
  }

  /** Pass this to fetch. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The timeout that fired, if the request ended because of one. */
  get timeout(): HubTimeoutError | undefined {
    const reason: unknown = this.controller.signal.reason;
    return reason instanceof HubTimeoutError ? reason : undefined;
  }

  /** Data arrived: restart the idle clock. */
  touch(): void {
    this.phase = 'data';
    this.timer.refresh();
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.parent?.removeEventListener('abort', this.onParentAbort);
  }
}
