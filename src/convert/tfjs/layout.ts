/**
 * Permutations and dense transposes shared by both directions of the tfjs conversion.
 *
 * A value's *layout* is the permutation from its ONNX dims to the dims of the tensor that holds it on the other
 * side: `[0, 2, 3, 1]` means the NCHW value is held as NHWC. The identity is the ONNX order itself.
 */

export type Perm = readonly number[];

/** NCHW → NHWC. */
export const NHWC: Perm = [0, 2, 3, 1];
/** NHWC → NCHW. */
export const NCHW: Perm = [0, 3, 1, 2];

export function identity(rank: number): number[] {
  return Array.from({ length: rank }, (_, i) => i);
}

export function isIdentity(p: Perm): boolean {
  return p.every((v, i) => v === i);
}

export function invert(p: Perm): number[] {
  const out = new Array<number>(p.length);
  p.forEach((v, i) => (out[v] = i));
  return out;
}

/** Key for maps of layouts: 'id' for the identity of any rank. */
export function permKey(p: Perm | undefined): string {
  return !p || isIdentity(p) ? 'id' : p.join(',');
}

/**
 * The permutation that turns a tensor held in layout `from` into layout `to` (both relative to the same ONNX
 * value): held_to[i] = onnx[to[i]] = held_from[from⁻¹[to[i]]].
 */
export function between(from: Perm, to: Perm): number[] {
  const inv = invert(from);
  return to.map((t) => inv[t]!);
}

type Numeric = Float32Array | Int32Array | Float64Array;

/** Dense transpose: out dims = dims[perm[i]]. */
export function transposeData<T extends Numeric>(data: T, dims: readonly number[], perm: Perm): { data: T; dims: number[] } {
  const rank = dims.length;
  const outDims = perm.map((p) => dims[p]!);
  if (isIdentity(perm)) return { data: data.slice() as T, dims: outDims };
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= dims[i]!;
  }
  const strides = perm.map((p) => inStrides[p]!);
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < data.length; o++) {
    out[o] = data[src]!;
    // odometer over output dims, moving the source offset by the permuted strides
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      src += strides[d]!;
      if (idx[d]! < outDims[d]!) break;
      src -= strides[d]! * outDims[d]!;
      idx[d] = 0;
    }
  }
  return { data: out, dims: outDims };
}
