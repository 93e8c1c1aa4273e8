const MODE = process.env.CACHE_MODE ?? 'gen';
export class WordCache<V> {
  private young = new Map<string, V>();
  private old = new Map<string, V>();
  private readonly generationSize: number;
  private readonly cap: number;
  hits = 0; misses = 0;
  constructor(capacity: number) {
    this.cap = capacity;
    this.generationSize = Math.max(0, Math.floor(capacity / 2));
  }
  get(key: string): V | undefined {
    const hit = this.young.get(key);
    if (hit !== undefined) return hit;
    if (MODE !== 'gen') return undefined;
    const oldHit = this.old.get(key);
    if (oldHit !== undefined) this.set(key, oldHit);
    return oldHit;
  }
  set(key: string, value: V): void {
    if (this.cap === 0) return;
    if (MODE === 'freeze') { if (this.young.size < this.cap) this.young.set(key, value); return; }
    if (MODE === 'clear') { if (this.young.size >= this.cap) this.young.clear(); this.young.set(key, value); return; }
    if (this.young.size >= this.generationSize) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }
  clear(): void { this.young.clear(); this.old.clear(); }
}
