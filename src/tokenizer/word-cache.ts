/**
 * Bounded word -> encoding cache with two generations: new entries go to `young`; when it
 * is full, `young` becomes `old` and the previous `old` is dropped. A hit in `old` is copied
 * back to `young`, so frequent words survive (an LRU approximation at Map speed).
 */
export class WordCache<V> {
  private young = new Map<string, V>();
  private old = new Map<string, V>();
  private readonly generationSize: number;

  /** `capacity` words at most are kept (0 disables the cache). */
  constructor(capacity: number) {
    this.generationSize = Math.max(0, Math.floor(capacity / 2));
  }

  get(key: string): V | undefined {
    const hit = this.young.get(key);
    if (hit !== undefined) return hit;
    const oldHit = this.old.get(key);
    if (oldHit !== undefined) this.set(key, oldHit);
    return oldHit;
  }

  set(key: string, value: V): void {
    if (this.generationSize === 0) return;
    if (this.young.size >= this.generationSize) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }

  clear(): void {
    this.young.clear();
    this.old.clear();
  }
}
