/**
 * YTTM's greedy rank-ordered BPE merging of one word (YTTM-FORMAT.md §4-5).
 *
 * A word is an Int32Array of symbols: token ids (>= 0) or unknown runs (< 0, the value is
 * minus the run's length in UTF-16 units). Unknown runs never merge and block merges across
 * them. Repeatedly, the pair with the smallest rule rank is merged, leftmost first on ties.
 */

const NO_RULE = 0x7fffffff;
const DEAD = -0x80000000;

/** Open-addressing hash (x, y) -> rule rank; a later rule for the same pair wins, as in YTTM. */
export class MergeRules {
  readonly left: Int32Array;
  readonly right: Int32Array;
  readonly result: Int32Array;
  private readonly keyX: Int32Array;
  private readonly keyY: Int32Array;
  private readonly ranks: Int32Array;
  private readonly mask: number;

  constructor(left: Int32Array, right: Int32Array, result: Int32Array) {
    this.left = left;
    this.right = right;
    this.result = result;
    let capacity = 16;
    while (capacity < left.length * 2) capacity *= 2;
    this.mask = capacity - 1;
    this.keyX = new Int32Array(capacity).fill(-1);
    this.keyY = new Int32Array(capacity);
    this.ranks = new Int32Array(capacity);
    for (let k = 0; k < left.length; k++) {
      const x = left[k] as number;
      const y = right[k] as number;
      let h = slot(x, y) & this.mask;
      while (this.keyX[h] !== -1 && (this.keyX[h] !== x || this.keyY[h] !== y)) h = (h + 1) & this.mask;
      this.keyX[h] = x;
      this.keyY[h] = y;
      this.ranks[h] = k;
    }
  }

  /** Rank of the rule merging x then y, or NO_RULE. Both must be token ids (>= 0). */
  rank(x: number, y: number): number {
    const keyX = this.keyX;
    let h = slot(x, y) & this.mask;
    for (;;) {
      const kx = keyX[h] as number;
      if (kx === x && this.keyY[h] === y) return this.ranks[h] as number;
      if (kx === -1) return NO_RULE;
      h = (h + 1) & this.mask;
    }
  }
}

function slot(x: number, y: number): number {
  return Math.imul(x ^ Math.imul(y, 0x85ebca6b), 0x9e3779b1) >>> 15;
}

/** Words up to this many symbols merge by rescanning (fast for short words); longer ones use the heap. */
const SCAN_LIMIT = 48;

/** Reusable scratch space for merging; one per tokenizer (encoding is synchronous). */
export class WordMerger {
  private readonly rules: MergeRules;
  private pairRank = new Int32Array(64);
  private next = new Int32Array(64);
  private prev = new Int32Array(64);
  private heapRank = new Int32Array(192);
  private heapPos = new Int32Array(192);

  constructor(rules: MergeRules) {
    this.rules = rules;
  }

  /** Merges sym[0..n) in place with dropout 0; returns the new length. */
  merge(sym: Int32Array, n: number): number {
    return n <= SCAN_LIMIT ? this.mergeByScan(sym, n) : this.mergeByHeap(sym, n, 0, undefined);
  }

  /**
   * BPE-dropout: each time the best candidate is taken, it is skipped with probability p
   * (and restored after the next accepted merge), as in YTTM. p = 1 merges nothing.
   */
  mergeWithDropout(sym: Int32Array, n: number, p: number, rng: () => number): number {
    if (p >= 1) return n;
    return this.mergeByHeap(sym, n, p, rng);
  }

  private mergeByScan(sym: Int32Array, n: number): number {
    const rules = this.rules;
    const result = rules.result;
    if (this.pairRank.length < n) this.pairRank = new Int32Array(n * 2);
    const pr = this.pairRank;
    for (let i = 0; i + 1 < n; i++) {
      const a = sym[i] as number;
      const b = sym[i + 1] as number;
      pr[i] = a >= 0 && b >= 0 ? rules.rank(a, b) : NO_RULE;
    }
    while (n > 1) {
      let best = NO_RULE;
      let at = -1;
      for (let i = 0; i + 1 < n; i++) {
        const r = pr[i] as number;
        if (r < best) {
          best = r;
          at = i;
        }
      }
      if (at < 0) break;
      const z = result[best] as number;
      sym[at] = z;
      for (let i = at + 1; i + 1 < n; i++) {
        sym[i] = sym[i + 1] as number;
        pr[i] = pr[i + 1] as number;
      }
      n--;
      if (at > 0) {
        const a = sym[at - 1] as number;
        pr[at - 1] = a >= 0 ? rules.rank(a, z) : NO_RULE;
      }
      if (at + 1 < n) {
        const b = sym[at + 1] as number;
        pr[at] = b >= 0 ? rules.rank(z, b) : NO_RULE;
      }
    }
    return n;
  }

  /**
   * YTTM's own algorithm: a linked list of symbols and a min-heap of candidate pairs keyed
   * by (rule rank, position of the left symbol in the initial word). A merged pair lives on
   * in its left node, so the smaller position is the leftmost pair. Stale candidates are
   * recognised by the symbols no longer matching the rule.
   */
  private mergeByHeap(sym: Int32Array, n: number, p: number, rng: (() => number) | undefined): number {
    const rules = this.rules;
    const { left, right, result } = rules;
    if (this.next.length < n) {
      this.next = new Int32Array(n * 2);
      this.prev = new Int32Array(n * 2);
    }
    if (this.heapRank.length < 3 * n + 4) {
      this.heapRank = new Int32Array(6 * n + 8);
      this.heapPos = new Int32Array(6 * n + 8);
    }
    const next = this.next;
    const prev = this.prev;
    const hr = this.heapRank;
    const hp = this.heapPos;
    let size = 0;

    const push = (r: number, pos: number): void => {
      let i = size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        const pr = hr[parent] as number;
        if (pr < r || (pr === r && (hp[parent] as number) < pos)) break;
        hr[i] = pr;
        hp[i] = hp[parent] as number;
        i = parent;
      }
      hr[i] = r;
      hp[i] = pos;
    };
    const popInto = (): void => {
      // Moves the last entry to the root and sifts it down; the caller has read the root.
      const r = hr[--size] as number;
      const pos = hp[size] as number;
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= size) break;
        const c2 = c + 1;
        if (c2 < size) {
          const r1 = hr[c] as number;
          const r2 = hr[c2] as number;
          if (r2 < r1 || (r2 === r1 && (hp[c2] as number) < (hp[c] as number))) c = c2;
        }
        const cr = hr[c] as number;
        if (r < cr || (r === cr && pos < (hp[c] as number))) break;
        hr[i] = cr;
        hp[i] = hp[c] as number;
        i = c;
      }
      hr[i] = r;
      hp[i] = pos;
    };
    const consider = (a: number, b: number): void => {
      const x = sym[a] as number;
      const y = sym[b] as number;
      if (x < 0 || y < 0) return;
      const r = rules.rank(x, y);
      if (r !== NO_RULE) push(r, a);
    };

    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    for (let i = 0; i + 1 < n; i++) consider(i, i + 1);

    const asideRank: number[] = [];
    const asidePos: number[] = [];
    while (size > 0) {
      const r = hr[0] as number;
      const pos = hp[0] as number;
      popInto();
      if (rng !== undefined && rng() < p) {
        asideRank.push(r);
        asidePos.push(pos);
        continue;
      }
      const q = next[pos] as number;
      if (q < 0 || sym[pos] !== left[r] || sym[q] !== right[r]) continue;
      sym[pos] = result[r] as number;
      sym[q] = DEAD;
      const after = next[q] as number;
      next[pos] = after;
      if (after >= 0) prev[after] = pos;
      const before = prev[pos] as number;
      if (before >= 0) consider(before, pos);
      if (after >= 0) consider(pos, after);
      if (asideRank.length > 0) {
        for (let i = 0; i < asideRank.length; i++) push(asideRank[i] as number, asidePos[i] as number);
        asideRank.length = 0;
        asidePos.length = 0;
      }
    }

    let m = 0;
    for (let i = 0; i >= 0; i = next[i] as number) sym[m++] = sym[i] as number;
    return m;
  }
}
