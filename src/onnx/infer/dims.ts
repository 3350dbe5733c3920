/**
 * Dimension algebra for shape inference. A dim is a number, a symbol (`"batch"`) or null (unknown); every
 * function here keeps symbols where the answer is provably the symbol, and gives null where it is not.
 */
import type { Dim } from '../ir.js';

/** Slice ends at or beyond this mean "to the end" (exporters write INT64_MAX or INT32_MAX). */
export const TO_END = 2147483647;

/**
 * Formats a shape for messages: `[batch, 3, ?, 224]`.
 *
 * @example
 * ```ts
 * formatShape(['batch', null, 4]); // "[batch, ?, 4]"
 * ```
 */
export function formatShape(shape: readonly Dim[] | undefined): string {
  if (!shape) return '(rank unknown)';
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/**
 * Numpy broadcasting of two dims. A fixed size other than 1 wins over a symbol or an unknown (the other must be
 * 1 or equal); a symbol against 1 or itself stays; two different symbols, or a symbol against an unknown, give
 * null. Two different fixed sizes, neither 1, contradict: undefined.
 *
 * @example
 * ```ts
 * broadcastDim('batch', 1); // 'batch'
 * broadcastDim('batch', 8); // 8
 * broadcastDim('a', 'b');   // null
 * broadcastDim(3, 4);       // undefined
 * ```
 */
export function broadcastDim(a: Dim, b: Dim): Dim | undefined {
  if (a === 1) return b;
  if (b === 1) return a;
  if (typeof a === 'number' && typeof b === 'number') return a === b ? a : undefined;
  if (typeof a === 'number') return a;
  if (typeof b === 'number') return b;
  return a === b ? a : null;
}

/**
 * Numpy broadcasting of shapes (right-aligned). Returns the shape, or the index (from the left of the result)
 * of the first position where two fixed sizes contradict.
 *
 * @example
 * ```ts
 * broadcastShapes([['batch', 1, 4], [3, 1]]); // { shape: ['batch', 3, 4] }
 * broadcastShapes([[2, 3], [4]]);             // { conflict: 1 }
 * ```
 */
export function broadcastShapes(shapes: readonly (readonly Dim[])[]): { shape: Dim[] } | { conflict: number } {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const j = i - (rank - s.length);
      if (j < 0) continue;
      const next = broadcastDim(d, s[j]);
      if (next === undefined) return { conflict: i };
      d = next;
    }
    out.push(d);
  }
  return { shape: out };
}

/** Two dims that must be equal: undefined when both are fixed and differ, else the most informative one. */
export function unifyDim(a: Dim, b: Dim): Dim | undefined {
  if (typeof a === 'number' && typeof b === 'number') return a === b ? a : undefined;
  if (typeof a === 'number') return a;
  if (typeof b === 'number') return b;
  return a ?? b;
}

/** Whether two dims are both fixed and different (a contradiction the model states). */
export function conflicts(a: Dim | undefined, b: Dim | undefined): boolean {
  return typeof a === 'number' && typeof b === 'number' && a !== b;
}

/** Product of dims: fixed when all are; a lone symbol times 1s stays the symbol; anything times 0 is 0. */
export function productDim(dims: readonly Dim[]): Dim {
  let n = 1;
  const symbols: string[] = [];
  let unknown = false;
  for (const d of dims) {
    if (d === 0) return 0;
    if (typeof d === 'number') n *= d;
    else if (typeof d === 'string') symbols.push(d);
    else unknown = true;
  }
  if (unknown) return null;
  if (symbols.length === 0) return n;
  return symbols.length === 1 && n === 1 ? symbols[0] : null;
}

/** Sum of dims: fixed when all are; a lone symbol plus 0s stays the symbol. */
export function sumDim(dims: readonly Dim[]): Dim {
  let n = 0;
  const other: Dim[] = [];
  for (const d of dims) {
    if (typeof d === 'number') n += d;
    else other.push(d);
  }
  if (other.length === 0) return n;
  return other.length === 1 && n === 0 ? other[0] : null;
}

/** `d * k` for a fixed factor: a symbol times 1 stays the symbol. */
export function scaleDim(d: Dim, k: number | null): Dim {
  if (k === 1) return d;
  if (k === 0 || d === 0) return 0;
  return typeof d === 'number' && k !== null ? d * k : null;
}

/** `d + k` for a fixed addend: a symbol plus 0 stays the symbol. */
export function addDim(d: Dim, k: number): Dim {
  if (k === 0) return d;
  return typeof d === 'number' ? d + k : null;
}

/**
 * Output size of a sliding window (convolution or pooling) over a dim: ⌊(d + pads − ((k−1)·dilation + 1)) / stride⌋ + 1,
 * or with `ceil` the ceiling, dropping a last window that would start inside the end padding (PyTorch and
 * onnxruntime do; ONNX states it from opset 19).
 */
export function windowDim(d: Dim, kernel: number, stride: number, dilation: number, padBegin: number, padEnd: number, ceil = false): Dim {
  if (typeof d !== 'number') return kernel === 1 && stride === 1 && padBegin === 0 && padEnd === 0 ? d : null;
  const span = d + padBegin + padEnd - ((kernel - 1) * dilation + 1);
  if (!ceil) return Math.floor(span / stride) + 1;
  let out = Math.ceil(span / stride) + 1;
  if ((out - 1) * stride >= d + padBegin) out--;
  return out;
}

/** Output size under auto_pad SAME_UPPER / SAME_LOWER: ⌈d / stride⌉. */
export function sameDim(d: Dim, stride: number): Dim {
  if (stride === 1) return d;
  return typeof d === 'number' ? Math.ceil(d / stride) : null;
}

/**
 * Length of `d[start:end:step]` under ONNX Slice's clamping. With d unknown the answer is known only for
 * whole-axis slices (start 0, end to the end, step 1, or the reversal `-1 : -∞ : -1`).
 */
export function sliceDim(d: Dim, start: number, end: number, step: number): Dim {
  if (typeof d !== 'number') {
    if (step === 1 && (start === 0 || start <= -TO_END) && end >= TO_END) return d;
    if (step === -1 && (start === -1 || start >= TO_END) && end <= -TO_END) return d;
    return null;
  }
  const [s, e] = sliceBounds(d, start, end, step);
  return step > 0 ? Math.max(0, Math.ceil((e - s) / step)) : Math.max(0, Math.ceil((s - e) / -step));
}

/** Effective start and end of a slice over a fixed dim, after ONNX's negative-index and clamping rules. */
export function sliceBounds(d: number, start: number, end: number, step: number): [number, number] {
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), d);
    e = Math.min(Math.max(e, 0), d);
  } else {
    s = Math.min(Math.max(s, 0), d - 1);
    e = Math.min(Math.max(e, -1), d - 1);
  }
  return [s, e];
}
