/**
 * ONNX tensor element types: names, wire codes, storage widths and the typed array each is held in.
 *
 * Sub-byte and exotic float types (float16, bfloat16, float8, int4, float4…) are held as their raw bits
 * (Uint16Array / Uint8Array, packed as on the wire); `codecs.ts` converts them to and from float32 or int8.
 */
import { OptionsError, oneOf } from '../errors.js';

/** Element type names, ONNX's `TensorProto.DataType` lower-cased. */
export type DType =
  | 'float32' | 'uint8' | 'int8' | 'uint16' | 'int16' | 'int32' | 'int64' | 'string' | 'bool' | 'float16'
  | 'float64' | 'uint32' | 'uint64' | 'complex64' | 'complex128' | 'bfloat16' | 'float8e4m3fn'
  | 'float8e4m3fnuz' | 'float8e5m2' | 'float8e5m2fnuz' | 'uint4' | 'int4' | 'float4e2m1' | 'float8e8m0'
  | 'uint2' | 'int2';

/** The typed array that holds each dtype's elements (or raw bits, for the packed and exotic ones). */
export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array;

interface DTypeInfo {
  code: number;
  /** Bits per element on the wire (raw_data); 0 for string. */
  bits: number;
  /** Constructor of the array the elements (or their raw bits) are held in. */
  array: { new (buf: ArrayBufferLike, off: number, len: number): TypedArray; new (len: number): TypedArray; BYTES_PER_ELEMENT: number } | null;
  /** The repeated field of TensorProto that holds non-raw data for this type. */
  field: 'floatData' | 'int32Data' | 'stringData' | 'int64Data' | 'doubleData' | 'uint64Data';
  float: boolean;
}

/** One row per dtype, in ONNX code order. */
export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  float32: { code: 1, bits: 32, array: Float32Array, field: 'floatData', float: true },
  uint8: { code: 2, bits: 8, array: Uint8Array, field: 'int32Data', float: false },
  int8: { code: 3, bits: 8, array: Int8Array, field: 'int32Data', float: false },
  uint16: { code: 4, bits: 16, array: Uint16Array, field: 'int32Data', float: false },
  int16: { code: 5, bits: 16, array: Int16Array, field: 'int32Data', float: false },
  int32: { code: 6, bits: 32, array: Int32Array, field: 'int32Data', float: false },
  int64: { code: 7, bits: 64, array: BigInt64Array, field: 'int64Data', float: false },
  string: { code: 8, bits: 0, array: null, field: 'stringData', float: false },
  bool: { code: 9, bits: 8, array: Uint8Array, field: 'int32Data', float: false },
  float16: { code: 10, bits: 16, array: Uint16Array, field: 'int32Data', float: true },
  float64: { code: 11, bits: 64, array: Float64Array, field: 'doubleData', float: true },
  uint32: { code: 12, bits: 32, array: Uint32Array, field: 'uint64Data', float: false },
  uint64: { code: 13, bits: 64, array: BigUint64Array, field: 'uint64Data', float: false },
  // complex numbers are held as interleaved (re, im) pairs
  complex64: { code: 14, bits: 64, array: Float32Array, field: 'floatData', float: true },
  complex128: { code: 15, bits: 128, array: Float64Array, field: 'doubleData', float: true },
  bfloat16: { code: 16, bits: 16, array: Uint16Array, field: 'int32Data', float: true },
  float8e4m3fn: { code: 17, bits: 8, array: Uint8Array, field: 'int32Data', float: true },
  float8e4m3fnuz: { code: 18, bits: 8, array: Uint8Array, field: 'int32Data', float: true },
  float8e5m2: { code: 19, bits: 8, array: Uint8Array, field: 'int32Data', float: true },
  float8e5m2fnuz: { code: 20, bits: 8, array: Uint8Array, field: 'int32Data', float: true },
  uint4: { code: 21, bits: 4, array: Uint8Array, field: 'int32Data', float: false },
  int4: { code: 22, bits: 4, array: Uint8Array, field: 'int32Data', float: false },
  float4e2m1: { code: 23, bits: 4, array: Uint8Array, field: 'int32Data', float: true },
  float8e8m0: { code: 24, bits: 8, array: Uint8Array, field: 'int32Data', float: true },
  uint2: { code: 25, bits: 2, array: Uint8Array, field: 'int32Data', float: false },
  int2: { code: 26, bits: 2, array: Uint8Array, field: 'int32Data', float: false },
};

const BY_CODE = new Map<number, DType>(Object.entries(DTYPES).map(([k, v]) => [v.code, k as DType]));

/** The dtype for an ONNX `TensorProto.DataType` code, or undefined (0 = UNDEFINED, or a code from a newer ONNX). */
export function dtypeFromCode(code: number): DType | undefined {
  return BY_CODE.get(code);
}

/** The ONNX `TensorProto.DataType` code of a dtype. */
export function dtypeCode(dtype: DType): number {
  return DTYPES[dtype].code;
}

/** Checks that a string names a dtype. */
export function parseDType(name: string): DType {
  if (name in DTYPES) return name as DType;
  if (name === 'float') return 'float32';
  if (name === 'double') return 'float64';
  throw new OptionsError(`Unknown dtype ${JSON.stringify(name)} ${oneOf(Object.keys(DTYPES))}`);
}

/** Bytes that `count` elements take in raw_data (sub-byte types are packed, low bits first). */
export function byteLength(dtype: DType, count: number): number {
  return Math.ceil((count * DTYPES[dtype].bits) / 8);
}

/** Number of elements of a shape (1 for a scalar). */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/**
 * The value range of each integer dtype (bool as 0..1; 64-bit types limited to what a double holds exactly), for
 * rounding and saturating conversions.
 *
 * @example
 * ```ts
 * INT_RANGE.int8; // [-128, 127]
 * ```
 */
export const INT_RANGE: Readonly<Partial<Record<DType, readonly [number, number]>>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  int4: [-8, 7],
  uint4: [0, 15],
  int2: [-2, 1],
  uint2: [0, 3],
  bool: [0, 1],
};
