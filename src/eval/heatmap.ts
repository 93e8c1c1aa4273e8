/**
 * The confusion matrix as a heat map image: one square cell per (true, predicted) pair, rows in
 * class order top to bottom, columns left to right, shaded white → blue by the row's share
 * (matplotlib's "Blues" ends) and labelled with the count; a strip of class numbers (1-based, as
 * in the text table) runs along the top and the left.
 */
import type { RgbImage } from '../image/index.js';

/** 3×5 digits, one row of 3 bits per line. */
const DIGITS = [
  [7, 5, 5, 5, 7], [2, 6, 2, 2, 7], [7, 1, 7, 4, 7], [7, 1, 7, 1, 7], [5, 5, 7, 1, 1],
  [7, 4, 7, 1, 7], [7, 4, 7, 5, 7], [7, 1, 1, 2, 2], [7, 5, 7, 5, 7], [7, 5, 7, 1, 7],
];
const DOT = 2; // pixels per font dot
const LOW = [247, 251, 255];
const HIGH = [8, 48, 107];

export function confusionHeatmap(confusion: readonly (readonly number[])[]): RgbImage {
  const k = confusion.length;
  const widest = Math.max(1, ...confusion.flat().map((v) => String(v).length), String(k).length);
  const cell = Math.max(28, widest * 4 * DOT + 6);
  const side = (k + 1) * cell;
  const data = new Uint8Array(side * side * 3).fill(255);
  const fill = (x0: number, y0: number, w: number, h: number, rgb: readonly number[]) => {
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) data.set(rgb, (y * side + x) * 3);
  };
  const text = (s: string, cx: number, cy: number, rgb: readonly number[]) => {
    const w = s.length * 4 * DOT - DOT;
    let x = cx - Math.floor(w / 2);
    const y = cy - Math.floor((5 * DOT) / 2);
    for (const ch of s) {
      const rows = DIGITS[Number(ch)];
      rows.forEach((bits, r) => {
        for (let c = 0; c < 3; c++) if (bits & (4 >> c)) fill(x + c * DOT, y + r * DOT, DOT, DOT, rgb);
      });
      x += 4 * DOT;
    }
  };
  for (let i = 0; i < k; i++) {
    text(String(i + 1), cell * (i + 1) + cell / 2, cell / 2, [90, 90, 90]);
    text(String(i + 1), cell / 2, cell * (i + 1) + cell / 2, [90, 90, 90]);
    const total = confusion[i].reduce((a, b) => a + b, 0);
    for (let j = 0; j < k; j++) {
      const v = confusion[i][j];
      const share = total ? v / total : 0;
      const rgb = LOW.map((lo, c) => Math.round(lo + (HIGH[c] - lo) * share));
      const x = cell * (j + 1), y = cell * (i + 1);
      fill(x, y, cell - 1, cell - 1, rgb);
      text(String(v), x + cell / 2, y + cell / 2, share > 0.5 ? [255, 255, 255] : [20, 20, 20]);
    }
  }
  return { width: side, height: side, data };
}
