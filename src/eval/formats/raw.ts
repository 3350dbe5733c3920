/**
 * The in-memory form every dataset file format is read into: one dense, C-ordered tensor whose first dimension
 * indexes samples. Shared by the IDX, npy/npz, image-folder and JSON readers.
 */
import type { DType, TypedArray } from '../../onnx/dtype.js';

/** A whole array as read from a file: element type, shape (dim 0 = samples) and row-major data. */
export interface RawTensor {
  dtype: DType;
  dims: number[];
  data: TypedArray;
}

/** Copies `bytes` into a fresh, aligned buffer viewed as `Ctor` (file data is rarely aligned for wide types). */
export function alignedView<T extends TypedArray>(
  Ctor: { new (buf: ArrayBuffer): T; BYTES_PER_ELEMENT: number },
  bytes: Uint8Array,
  bigEndian = false,
): T {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const w = Ctor.BYTES_PER_ELEMENT;
  if (bigEndian && w > 1) {
    for (let i = 0; i < copy.length; i += w) {
      for (let a = i, b = i + w - 1; a < b; a++, b--) {
        const t = copy[a]!;
        copy[a] = copy[b]!;
        copy[b] = t;
      }
    }
  }
  return new Ctor(copy.buffer);
}

/** Formats the first bytes of a file for error messages, e.g. `1f 8b 08 00`. */
export function hexBytes(bytes: Uint8Array, n = 4): string {
  return [...bytes.subarray(0, n)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}
