/**
 * Bounded word -> encoding cache. When full it is emptied and refilled: cheaper than LRU
 * bookkeeping on every hit, and frequent words are back after a few lines of text.
 */
export class WordCache<V> {
  private readonly map = new Map<string, V>();
  private readonly capacity: number;

  /** `capacity` words at most are kept (0 disables the cache). */
  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  set(key: string, value: V): void {
    if (this.capacity === 0) return;
    if (this.map.size >= this.capacity) this.map.clear();
    this.map.set(key, value);
  }
}
