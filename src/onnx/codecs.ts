/**
 * Pack and unpack the ONNX element types that onnxpress holds as raw bits (see `dtype.ts`): float16, bfloat16,
 * the float8 family, float4e2m1, and the packed 4-bit and 2-bit integers; plus `toFloat32` / `fromFloat32`, which
 * decode or encode any numeric dtype so that quantization and precision passes can work in float32 only.
 *
 * Every function is pure and allocates nothing but its result (and, at most, a zero-copy view over it): these run
 * over whole weight tensors, so per-element objects or temporary copies would dominate the cost.
 *
 * Rounding follows ONNX's Cast: round to nearest, ties to even, for every float target except float8e8m0 (whose
 * rounding mode is an option, as in Cast-24's `round_mode`); float8 saturation follows the tables in Cast's
 * description. Float encoders work on the float32 bit pattern, never on float arithmetic, so that ties, subnormals
 * and NaN payloads come out the same on every platform.
 */
import { OptionsError, expected } from '../errors.js';
import { DTYPES, INT_RANGE, byteLength, type DType, type TypedArray } from './dtype.js';

/**
 * The five 8-bit float dtypes.
 *
 * @example
 * ```ts
 * const dt: Float8DType = 'float8e4m3fn';
 * float8ToFloat32(new Uint8Array([0x38]), dt); // Float32Array [1]
 * ```
 */
export type Float8DType = 'float8e4m3fn' | 'float8e4m3fnuz' | 'float8e5m2' | 'float8e5m2fnuz' | 'float8e8m0';

/**
 * How values that float8 cannot hold are encoded (ONNX Cast's `saturate` and `round_mode` attributes).
 *
 * @example
 * ```ts
 * const opts: Float8Options = { saturate: false, roundMode: 'nearest' };
 * float32ToFloat8([1e6], 'float8e5m2', opts); // Uint8Array [0x7c] (inf: not saturated)
 * ```
 */
export interface Float8Options {
  /**
   * Clamp out-of-range values (and ±inf) to the largest finite value instead of producing NaN (or inf for
   * float8e5m2). Default true, as in ONNX Cast and QuantizeLinear.
   */
  saturate?: boolean;
  /**
   * Rounding to float8e8m0 only (the others always round to nearest even): `up` (default, ONNX's default and
   * what MX scale computation wants, so that the scaled block never overflows), `down`, or `nearest` (ties up).
   */
  roundMode?: 'up' | 'down' | 'nearest';
}

// A one-element scratch pair, so that plain numbers can be read as float32 bit patterns without allocating per call.
const SCRATCH_F32 = new Float32Array(1);
const SCRATCH_U32 = new Uint32Array(SCRATCH_F32.buffer);

/**
 * The float32 bit patterns of `x`: a zero-copy view for a Float32Array (which keeps NaN payloads exactly, where
 * reading elements as JS numbers might not), otherwise null and the caller goes through `numberBits`.
 */
function bitsView(x: Float32Array | ArrayLike<number>): Uint32Array | null {
  return x instanceof Float32Array ? new Uint32Array(x.buffer, x.byteOffset, x.length) : null;
}

/** The float32 bit pattern of a number (rounded to float32 first, to nearest even). */
function numberBits(v: number): number {
  SCRATCH_F32[0] = v;
  return SCRATCH_U32[0]!;
}

/**
 * Rounds a finite, non-negative float32 (given as bits) to a small binary float format with `man` mantissa bits and
 * exponent bias `bias`, ties to even, and returns the magnitude bit pattern `(exponent << man) | mantissa`. The result
 * is not clamped: a caller compares it with its format's largest finite pattern to detect overflow. Subnormal targets
 * are handled by shifting the full significand (implicit bit included) further right; a carry out of the mantissa
 * lands in the exponent field, which is exactly the next representable value, so no special case is needed.
 */
function roundToSmallFloat(bits: number, man: number, bias: number): number {
  const exp = bits >>> 23;
  const mant = bits & 0x7fffff;
  if (exp === 0) return 0; // float32 zero or subnormal (< 2^-126): below half the smallest subnormal of every target
  const e = exp - 127 + bias; // the target's biased exponent
  let k: number;
  let src: number;
  let shift: number;
  if (e >= 1) {
    shift = 23 - man;
    src = mant;
    k = (e << man) | (mant >>> shift);
  } else {
    shift = 24 - man - e;
    // 2^(shift-1) (the halfway point) exceeds the 24-bit significand from shift 25 on: the value rounds to zero.
    if (shift > 24) return 0;
    src = mant | 0x800000;
    k = src >>> shift;
  }
  const rem = src & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (k & 1) === 1)) k++;
  return k;
}

// ---------------------------------------------------------------------------------------------------------------
// float16

/**
 * Decodes IEEE 754 binary16 bit patterns to float32 (exact: every float16 is a float32). NaN payloads are kept.
 *
 * @example
 * ```ts
 * float16ToFloat32(new Uint16Array([0x3c00, 0xc000, 0x0001])); // Float32Array [1, -2, 5.960464477539063e-8]
 * ```
 */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const n = bits.length;
  const out = new Float32Array(n);
  const u = new Uint32Array(out.buffer); // write bit patterns, so NaN payloads and -0 survive
  for (let i = 0; i < n; i++) {
    const h = bits[i]!;
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    let mant = h & 0x3ff;
    if (exp === 0x1f) {
      u[i] = sign | 0x7f800000 | (mant << 13);
    } else if (exp !== 0) {
      u[i] = sign | ((exp + 112) << 23) | (mant << 13); // rebias 15 -> 127
    } else if (mant === 0) {
      u[i] = sign;
    } else {
      // float16 subnormal: a normal float32. Shift the leading 1 up into the implicit position.
      let e = 113;
      while ((mant & 0x400) === 0) {
        mant <<= 1;
        e--;
      }
      u[i] = sign | (e << 23) | ((mant & 0x3ff) << 13);
    }
  }
  return out;
}

/**
 * Encodes float32 values as IEEE 754 binary16 bit patterns: round to nearest, ties to even; values beyond the
 * float16 range become ±inf, tiny values become float16 subnormals or ±0, and NaN stays NaN (quiet, sign and the
 * top payload bits kept). Plain numbers are first rounded to float32, as ONNX Cast from double to float16 does not
 * promise better.
 *
 * @example
 * ```ts
 * float32ToFloat16([1, 65504, 65520, -0]); // Uint16Array [0x3c00, 0x7bff, 0x7c00, 0x8000]
 * ```
 */
export function float32ToFloat16(x: Float32Array | ArrayLike<number>): Uint16Array {
  const n = x.length;
  const out = new Uint16Array(n);
  const view = bitsView(x);
  for (let i = 0; i < n; i++) {
    const b = view ? view[i]! : numberBits(x[i]!);
    const sign = (b >>> 16) & 0x8000;
    const a = b & 0x7fffffff;
    if (a >= 0x7f800000) {
      // inf, or NaN: keep the top 10 payload bits and set the quiet bit, so the result can't collapse into inf
      out[i] = a === 0x7f800000 ? sign | 0x7c00 : sign | 0x7e00 | ((a & 0x7fffff) >>> 13);
      continue;
    }
    const k = roundToSmallFloat(a, 10, 15);
    out[i] = sign | (k >= 0x7c00 ? 0x7c00 : k); // rounding past 65504 is overflow: IEEE gives inf
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// bfloat16

/**
 * Decodes bfloat16 bit patterns to float32 (exact: bfloat16 is the top half of a float32).
 *
 * @example
 * ```ts
 * bfloat16ToFloat32(new Uint16Array([0x3f80, 0x4049])); // Float32Array [1, 3.140625]
 * ```
 */
export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const n = bits.length;
  const out = new Float32Array(n);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) u[i] = bits[i]! << 16;
  return out;
}

/**
 * Encodes float32 values as bfloat16 bit patterns, round to nearest even (as torch and ONNX Cast since opset 19 do;
 * plain truncation, which older ONNX test data used, is biased toward zero). NaN stays NaN (made quiet, so that a
 * payload living only in the low bits cannot become inf); overflow rounds to ±inf.
 *
 * @example
 * ```ts
 * float32ToBfloat16([1, 3.14159, NaN]); // Uint16Array [0x3f80, 0x4049, 0x7fc0]
 * ```
 */
export function float32ToBfloat16(x: Float32Array | ArrayLike<number>): Uint16Array {
  const n = x.length;
  const out = new Uint16Array(n);
  const view = bitsView(x);
  for (let i = 0; i < n; i++) {
    const b = view ? view[i]! : numberBits(x[i]!);
    if ((b & 0x7fffffff) > 0x7f800000) {
      out[i] = (b >>> 16) | 0x0040;
      continue;
    }
    // Adding 0x7fff plus the kept LSB rounds half to even in one carry; the largest finite input stays below 2^32.
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// float8

interface SmallFloat {
  man: number;
  bias: number;
  /** Largest finite magnitude pattern. */
  max: number;
  /** The NaN pattern produced (positive; the sign bit is or-ed in except for the FNUZ types). */
  nan: number;
  /** The +inf pattern, or -1 where the format has none. */
  inf: number;
  /** FNUZ: no negative zero and a single NaN, 0x80. */
  uz: boolean;
}

const F8: Readonly<Record<Exclude<Float8DType, 'float8e8m0'>, SmallFloat>> = {
  // S.EEEE.MMM, bias 7, no inf, S.1111.111 is NaN: max 0x7E = 448
  float8e4m3fn: { man: 3, bias: 7, max: 0x7e, nan: 0x7f, inf: -1, uz: false },
  // bias 8, 0x80 is the NaN: max 0x7F = 240
  float8e4m3fnuz: { man: 3, bias: 8, max: 0x7f, nan: 0x80, inf: -1, uz: true },
  // IEEE-like S.EEEEE.MM, bias 15: inf 0x7C, NaN 0x7D-0x7F, max 0x7B = 57344
  float8e5m2: { man: 2, bias: 15, max: 0x7b, nan: 0x7e, inf: 0x7c, uz: false },
  // bias 16, 0x80 is the NaN: max 0x7F = 57344
  float8e5m2fnuz: { man: 2, bias: 16, max: 0x7f, nan: 0x80, inf: -1, uz: true },
};

const FLOAT8_NAMES = ['float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz', 'float8e8m0'];

const QNAN = 0x7fc00000;

/** Float32 bit patterns of the 256 values of a float8 type, built on first use (1 KiB each). */
const F8_TABLES = new Map<Float8DType, Uint32Array>();

function float8Table(dtype: Float8DType): Uint32Array {
  let t = F8_TABLES.get(dtype);
  if (t) return t;
  t = new Uint32Array(256);
  const f = new Float32Array(t.buffer);
  if (dtype === 'float8e8m0') {
    // exponent only, unsigned, bias 127: 0x00 = 2^-127 (a float32 subnormal), 0xFF = NaN
    for (let v = 0; v < 255; v++) f[v] = 2 ** (v - 127);
    t[255] = QNAN;
  } else {
    const fmt = F8[dtype];
    const expBits = 7 - fmt.man;
    const expMax = (1 << expBits) - 1;
    for (let v = 0; v < 256; v++) {
      const neg = (v & 0x80) !== 0;
      const e = (v >>> fmt.man) & expMax;
      const m = v & ((1 << fmt.man) - 1);
      let val: number;
      if (fmt.uz ? v === 0x80 : fmt.inf < 0 ? (v & 0x7f) === 0x7f : e === expMax && m !== 0) {
        t[v] = (neg && !fmt.uz ? 0x80000000 : 0) | QNAN;
        continue;
      } else if (fmt.inf >= 0 && e === expMax) {
        val = Infinity;
      } else if (e === 0) {
        val = m * 2 ** (1 - fmt.bias - fmt.man);
      } else {
        val = (1 + m / (1 << fmt.man)) * 2 ** (e - fmt.bias);
      }
      f[v] = neg ? -val : val;
    }
  }
  F8_TABLES.set(dtype, t);
  return t;
}

function checkFloat8(dtype: string): asserts dtype is Float8DType {
  if (!FLOAT8_NAMES.includes(dtype)) {
    throw new OptionsError(expected(`one of ${FLOAT8_NAMES.join(', ')}`, 'the float8 dtype', dtype));
  }
}

/**
 * Decodes float8 bit patterns to float32 (exact). NaN patterns (E4M3FN: S.1111.111; E5M2: S.11111.xx with xx ≠ 0;
 * FNUZ: 0x80) decode to NaN; E5M2's S.11111.00 to ±inf; float8e8m0's byte `e` to 2^(e−127), 0xFF to NaN.
 *
 * @example
 * ```ts
 * float8ToFloat32(new Uint8Array([0x7e, 0x7f, 0x38]), 'float8e4m3fn'); // Float32Array [448, NaN, 1]
 * float8ToFloat32(new Uint8Array([0x7c]), 'float8e5m2'); // Float32Array [Infinity]
 * ```
 */
export function float8ToFloat32(bits: Uint8Array, dtype: Float8DType): Float32Array {
  checkFloat8(dtype);
  const table = float8Table(dtype);
  const n = bits.length;
  const out = new Float32Array(n);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) u[i] = table[bits[i]!]!;
  return out;
}

function encodeFloat8(b: number, fmt: SmallFloat, saturate: boolean): number {
  const sign = (b >>> 24) & 0x80;
  const a = b & 0x7fffffff;
  const nan = fmt.uz ? 0x80 : sign | fmt.nan;
  if (a > 0x7f800000) return nan;
  // Cast's tables: with saturate, ±inf and anything rounding past the largest finite value become ±max; without it,
  // inf where the format has one (E5M2), NaN otherwise.
  const overflow = saturate ? sign | fmt.max : fmt.inf >= 0 ? sign | fmt.inf : nan;
  if (a === 0x7f800000) return overflow;
  const k = roundToSmallFloat(a, fmt.man, fmt.bias);
  if (k > fmt.max) return overflow;
  if (k === 0 && fmt.uz) return 0; // FNUZ has no -0: 0x80 is its NaN
  return sign | k;
}

/** float32 bits to float8e8m0; see `float32ToFloat8` for the rules. */
function encodeE8M0(b: number, saturate: boolean, mode: 'up' | 'down' | 'nearest'): number {
  // Negative inputs are undefined behavior in ONNX; like onnx's reference we look at the magnitude only.
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? 0xff : saturate ? 0xfe : 0xff;
  if (exp === 0) {
    // Zero or a float32 subnormal: E8M0 has 2^-127 (0x00, itself a float32 subnormal: mantissa 0x400000) and
    // 2^-126 (0x01). Rounded by value: onnx's exponent-bit rule would send 2^-127 itself to 0x01 under 'up'.
    // Spec table: anything below E8M0_MIN is E8M0_MIN when saturating, NaN otherwise.
    const HALF = 0x400000; // 2^-127
    if (mode === 'up') {
      if (mant === 0) return saturate ? 0x00 : 0xff;
      return mant <= HALF ? 0x00 : 0x01;
    }
    if (mant < HALF) return saturate ? 0x00 : 0xff; // below E8M0_MIN, and E8M0 has no zero to round down to
    if (mode === 'down') return 0x00;
    return mant >= HALF + (HALF >>> 1) ? 0x01 : 0x00; // midpoint 1.5 * 2^-127, ties up
  }
  let e = exp;
  if (mode === 'up') {
    if (mant !== 0) e++;
  } else if (mode === 'nearest') {
    // onnx's reference: guard bit set rounds up; for normal inputs that is round-half-up on the value
    if ((mant & 0x400000) !== 0) e++;
  }
  if (e === 0xff) return saturate ? 0xfe : 0xff;
  return e;
}

/**
 * Encodes float32 values as float8 bit patterns following ONNX Cast (opset 19+, 24 for float8e8m0).
 *
 * - E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ: round to nearest even. With `saturate` (default) ±inf and values that round
 *   past the largest finite value (448, 240, 57344, 57344) become ±max; without it they become NaN, or ±inf for E5M2.
 *   NaN stays NaN. The FNUZ types have no −0: −0 and negatives that round to zero encode as 0x00.
 * - E8M0 (exponent only, unsigned, 0xFF = NaN): `roundMode` up (default), down, or nearest with ties up, on the
 *   exponent bits as onnx's reference `to_float8e8m0` does; float32 subnormals are rounded by value. With `saturate`,
 *   inf and overflow give 0xFE (2^127) and 0 gives 0x00 (2^-127); without it they give NaN. The sign is ignored
 *   (negative input is undefined behavior in ONNX).
 *
 * @example
 * ```ts
 * float32ToFloat8([1, 500, -Infinity], 'float8e4m3fn'); // Uint8Array [0x38, 0x7e, 0xfe]
 * float32ToFloat8([500], 'float8e4m3fn', { saturate: false }); // Uint8Array [0x7f] (NaN)
 * float32ToFloat8([0.3], 'float8e8m0'); // Uint8Array [0x7e] (0.5: rounded up)
 * ```
 */
export function float32ToFloat8(
  x: Float32Array | ArrayLike<number>,
  dtype: Float8DType,
  options: Float8Options = {},
): Uint8Array {
  checkFloat8(dtype);
  const saturate = options.saturate ?? true;
  const mode = options.roundMode ?? 'up';
  if (mode !== 'up' && mode !== 'down' && mode !== 'nearest') {
    throw new OptionsError(expected('"up", "down" or "nearest"', 'roundMode', mode));
  }
  const n = x.length;
  const out = new Uint8Array(n);
  const view = bitsView(x);
  if (dtype === 'float8e8m0') {
    for (let i = 0; i < n; i++) out[i] = encodeE8M0(view ? view[i]! : numberBits(x[i]!), saturate, mode);
  } else {
    const fmt = F8[dtype];
    for (let i = 0; i < n; i++) out[i] = encodeFloat8(view ? view[i]! : numberBits(x[i]!), fmt, saturate);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// float4e2m1

// S.EE.M, bias 1, no inf or NaN: 0, 0.5, 1, 1.5, 2, 3, 4, 6
const F4: SmallFloat = { man: 1, bias: 1, max: 0x7, nan: 0x7, inf: -1, uz: false };
const F4_VALUES = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];

function checkPacked(packed: Uint8Array, count: number, perByte: number, what: string): void {
  if (!Number.isSafeInteger(count) || count < 0) throw new OptionsError(expected('a count ≥ 0', what, count));
  const need = Math.ceil(count / perByte);
  if (packed.length < need) {
    throw new OptionsError(`${what}: ${count} elements need ${need} packed bytes but received ${packed.length}`);
  }
}

/**
 * Decodes `count` float4e2m1 values packed two per byte, low nibble first (ONNX's layout).
 *
 * @example
 * ```ts
 * float4e2m1ToFloat32(new Uint8Array([0xf2, 0x01]), 3); // Float32Array [1, -6, 0.5]
 * ```
 */
export function float4e2m1ToFloat32(packed: Uint8Array, count: number): Float32Array {
  checkPacked(packed, count, 2, 'float4e2m1');
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = F4_VALUES[(packed[i >>> 1]! >>> ((i & 1) << 2)) & 0xf]!;
  return out;
}

/**
 * Encodes float32 values as float4e2m1, packed two per byte, low nibble first (an odd count leaves the last high
 * nibble 0). Round to nearest even, saturating to ±6 (the format has no inf); NaN encodes as 0x7 (+6), as onnx's
 * reference does, since the format has no NaN either.
 *
 * @example
 * ```ts
 * float32ToFloat4e2m1([1, -6, 0.7]); // Uint8Array [0xf2, 0x01]: nibbles 0x2 (1), 0xf (-6), 0x1 (0.5)
 * ```
 */
export function float32ToFloat4e2m1(x: Float32Array | ArrayLike<number>): Uint8Array {
  const n = x.length;
  const out = new Uint8Array(Math.ceil(n / 2));
  const view = bitsView(x);
  for (let i = 0; i < n; i++) {
    const b = view ? view[i]! : numberBits(x[i]!);
    const a = b & 0x7fffffff;
    let nib: number;
    if (a > 0x7f800000) nib = 0x7;
    else {
      const sign = (b >>> 28) & 0x8;
      const k = a === 0x7f800000 ? 0x8 : roundToSmallFloat(a, F4.man, F4.bias);
      nib = sign | (k > F4.max ? F4.max : k);
    }
    out[i >>> 1]! |= nib << ((i & 1) << 2);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// 4-bit and 2-bit integers

function unpackBits(packed: Uint8Array, count: number, bits: 2 | 4, signed: boolean, what: string): Int8Array | Uint8Array {
  const perByte = 8 / bits;
  checkPacked(packed, count, perByte, what);
  const out = signed ? new Int8Array(count) : new Uint8Array(count);
  const mask = (1 << bits) - 1;
  const logPer = bits === 4 ? 1 : 2;
  const signShift = 32 - bits;
  for (let i = 0; i < count; i++) {
    const v = (packed[i >>> logPer]! >>> ((i & (perByte - 1)) * bits)) & mask;
    out[i] = signed ? (v << signShift) >> signShift : v; // sign-extend via the int32 sign bit
  }
  return out;
}

function packBits(values: ArrayLike<number>, bits: 2 | 4, signed: boolean, what: string): Uint8Array {
  const perByte = 8 / bits;
  const n = values.length;
  const out = new Uint8Array(Math.ceil(n / perByte));
  const lo = signed ? -(1 << (bits - 1)) : 0;
  const hi = signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
  const mask = (1 << bits) - 1;
  const logPer = bits === 4 ? 1 : 2;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    // Refuse rather than clamp or wrap: a caller packing out-of-range values has a bug (it should have quantized),
    // and silently wrapping 8 to -8 would flip a weight's sign.
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new OptionsError(expected(`an integer in [${lo}, ${hi}]`, `${what} element ${i}`, v));
    }
    out[i >>> logPer]! |= (v & mask) << ((i & (perByte - 1)) * bits);
  }
  return out;
}

/**
 * Unpacks `count` int4 values (two per byte, low nibble first, two's complement) to an Int8Array in [-8, 7].
 *
 * @example
 * ```ts
 * unpackInt4(new Uint8Array([0x8f, 0x07]), 3); // Int8Array [-1, -8, 7]
 * ```
 */
export function unpackInt4(packed: Uint8Array, count: number): Int8Array {
  return unpackBits(packed, count, 4, true, 'int4') as Int8Array;
}

/**
 * Packs int4 values (integers in [-8, 7]) two per byte, low nibble first; throws an OptionsError naming the first
 * element that is out of range or not an integer.
 *
 * @example
 * ```ts
 * packInt4([-1, -8, 7]); // Uint8Array [0x8f, 0x07]
 * ```
 */
export function packInt4(values: ArrayLike<number>): Uint8Array {
  return packBits(values, 4, true, 'int4');
}

/**
 * Unpacks `count` uint4 values (two per byte, low nibble first) to a Uint8Array in [0, 15].
 *
 * @example
 * ```ts
 * unpackUint4(new Uint8Array([0x21, 0x03]), 3); // Uint8Array [1, 2, 3]
 * ```
 */
export function unpackUint4(packed: Uint8Array, count: number): Uint8Array {
  return unpackBits(packed, count, 4, false, 'uint4') as Uint8Array;
}

/**
 * Packs uint4 values (integers in [0, 15]) two per byte, low nibble first; throws an OptionsError naming the first
 * element that is out of range.
 *
 * @example
 * ```ts
 * packUint4([1, 2, 3]); // Uint8Array [0x21, 0x03]
 * ```
 */
export function packUint4(values: ArrayLike<number>): Uint8Array {
  return packBits(values, 4, false, 'uint4');
}

/**
 * Unpacks `count` int2 values (four per byte, lowest bits first, two's complement) to an Int8Array in [-2, 1].
 *
 * @example
 * ```ts
 * unpackInt2(new Uint8Array([0b01_00_11_10]), 4); // Int8Array [-2, -1, 0, 1]
 * ```
 */
export function unpackInt2(packed: Uint8Array, count: number): Int8Array {
  return unpackBits(packed, count, 2, true, 'int2') as Int8Array;
}

/**
 * Packs int2 values (integers in [-2, 1]) four per byte, lowest bits first; throws an OptionsError naming the first
 * element that is out of range.
 *
 * @example
 * ```ts
 * packInt2([-2, -1, 0, 1]); // Uint8Array [0b01_00_11_10]
 * ```
 */
export function packInt2(values: ArrayLike<number>): Uint8Array {
  return packBits(values, 2, true, 'int2');
}

/**
 * Unpacks `count` uint2 values (four per byte, lowest bits first) to a Uint8Array in [0, 3].
 *
 * @example
 * ```ts
 * unpackUint2(new Uint8Array([0b11_10_01_00, 0b01]), 5); // Uint8Array [0, 1, 2, 3, 1]
 * ```
 */
export function unpackUint2(packed: Uint8Array, count: number): Uint8Array {
  return unpackBits(packed, count, 2, false, 'uint2') as Uint8Array;
}

/**
 * Packs uint2 values (integers in [0, 3]) four per byte, lowest bits first; throws an OptionsError naming the first
 * element that is out of range.
 *
 * @example
 * ```ts
 * packUint2([0, 1, 2, 3, 1]); // Uint8Array [0b11_10_01_00, 0b01]
 * ```
 */
export function packUint2(values: ArrayLike<number>): Uint8Array {
  return packBits(values, 2, false, 'uint2');
}

// ---------------------------------------------------------------------------------------------------------------
// any dtype

function notNumeric(dtype: DType, verb: string): OptionsError {
  return new OptionsError(`Cannot ${verb} ${dtype}: only real numeric dtypes convert to and from float32`);
}

function checkHolder(data: TypedArray, dtype: DType, count: number): void {
  const info = DTYPES[dtype];
  if (info.array === null || !(data instanceof info.array)) {
    const want = info.array ? info.array.name : 'no typed array';
    throw new OptionsError(`${dtype} data must be held in a ${want} but received a ${data.constructor.name}`);
  }
  if (!Number.isSafeInteger(count) || count < 0) throw new OptionsError(expected('a count ≥ 0', `${dtype} data`, count));
  const need = info.bits < 8 ? byteLength(dtype, count) : count;
  if (data.length < need) {
    throw new OptionsError(`${dtype} data: ${count} elements need ${need} array elements but received ${data.length}`);
  }
}

/**
 * Decodes the first `count` elements of any real numeric dtype to float32: the raw-bit types through the decoders
 * above, integers and float64 by value (rounded to nearest float32), int64/uint64 via Number, bool as 0/1. Packed
 * types take `count` from the tensor's shape, since their byte length cannot tell an odd count from an even one.
 * Throws an OptionsError for string and complex dtypes, or when `data` is not the array type `DTYPES` names.
 *
 * @example
 * ```ts
 * toFloat32(new Uint16Array([0x3c00]), 'float16', 1); // Float32Array [1]
 * toFloat32(packInt4([-3, 5, 7]), 'int4', 3); // Float32Array [-3, 5, 7]
 * toFloat32(new BigInt64Array([-2n]), 'int64', 1); // Float32Array [-2]
 * ```
 */
export function toFloat32(data: TypedArray, dtype: DType, count: number): Float32Array {
  if (dtype === 'string' || dtype === 'complex64' || dtype === 'complex128') throw notNumeric(dtype, 'decode');
  checkHolder(data, dtype, count);
  switch (dtype) {
    case 'float16':
      return float16ToFloat32((data as Uint16Array).subarray(0, count));
    case 'bfloat16':
      return bfloat16ToFloat32((data as Uint16Array).subarray(0, count));
    case 'float8e4m3fn':
    case 'float8e4m3fnuz':
    case 'float8e5m2':
    case 'float8e5m2fnuz':
    case 'float8e8m0':
      return float8ToFloat32((data as Uint8Array).subarray(0, count), dtype);
    case 'float4e2m1':
      return float4e2m1ToFloat32(data as Uint8Array, count);
    case 'int4':
    case 'uint4':
    case 'int2':
    case 'uint2': {
      // Decode straight into the result rather than through unpackInt4 & co., to allocate nothing else.
      const bits = dtype === 'int4' || dtype === 'uint4' ? 4 : 2;
      const signed = dtype === 'int4' || dtype === 'int2';
      const perByte = 8 / bits;
      const logPer = bits === 4 ? 1 : 2;
      const mask = (1 << bits) - 1;
      const s = 32 - bits;
      const packed = data as Uint8Array;
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        const v = (packed[i >>> logPer]! >>> ((i & (perByte - 1)) * bits)) & mask;
        out[i] = signed ? (v << s) >> s : v;
      }
      return out;
    }
    case 'bool': {
      const b = data as Uint8Array;
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = b[i] !== 0 ? 1 : 0; // any nonzero byte is true
      return out;
    }
    case 'int64':
    case 'uint64': {
      const b = data as BigInt64Array | BigUint64Array;
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(b[i]!);
      return out;
    }
    default: {
      // float32, float64, (u)int8/16/32: the typed-array store rounds to nearest float32
      const out = new Float32Array(count);
      const src = data as Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;
      for (let i = 0; i < count; i++) out[i] = src[i]!;
      return out;
    }
  }
}

/** Round half to even: Math.round rounds halves up, which biases quantized weights (−2.5 → −2 but 2.5 → 3). */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f; // exact: v is a float32 widened to a double
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}


/** Round half to even, then clamp to [lo, hi]; NaN becomes 0 (Cast leaves it undefined; 0 is the harmless choice). */
function toIntSaturated(v: number, lo: number, hi: number): number {
  if (v !== v) return 0;
  if (v <= lo) return lo;
  if (v >= hi) return hi;
  return roundHalfEven(v);
}

/**
 * Encodes float32 values as any real numeric dtype, in the array `DTYPES` names for it (packed, for the sub-byte
 * types). Floats round to nearest even (float8 per `float32ToFloat8` and `options`); integers round half to even and
 * saturate to the type's range, NaN becoming 0 (saturation instead of Cast's wrap-around, because a quantizer that
 * overshoots by one step must clip, not flip sign); bool is `x !== 0` (NaN is true, as in Cast). Throws an
 * OptionsError for string and complex dtypes.
 *
 * @example
 * ```ts
 * fromFloat32(new Float32Array([0.5, 1.5, 2.5, 300]), 'uint8'); // Uint8Array [0, 2, 2, 255]
 * fromFloat32(new Float32Array([1]), 'float16'); // Uint16Array [0x3c00]
 * fromFloat32(new Float32Array([-9, 7.6]), 'int4'); // Uint8Array [0x78]: -8 and 7, saturated and packed
 * ```
 */
export function fromFloat32(x: Float32Array, dtype: DType, options: Float8Options = {}): TypedArray {
  const n = x.length;
  switch (dtype) {
    case 'string':
    case 'complex64':
    case 'complex128':
      throw notNumeric(dtype, 'encode to');
    case 'float32':
      return x.slice();
    case 'float64':
      return Float64Array.from(x);
    case 'float16':
      return float32ToFloat16(x);
    case 'bfloat16':
      return float32ToBfloat16(x);
    case 'float8e4m3fn':
    case 'float8e4m3fnuz':
    case 'float8e5m2':
    case 'float8e5m2fnuz':
    case 'float8e8m0':
      return float32ToFloat8(x, dtype, options);
    case 'float4e2m1':
      return float32ToFloat4e2m1(x);
    case 'bool': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = x[i] !== 0 ? 1 : 0;
      return out;
    }
    case 'int64': {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const v = x[i]!;
        // ±2^63 is exact in float32; anything at or past it saturates (2^63 itself is one past int64's max)
        out[i] = v !== v ? 0n : v >= 2 ** 63 ? 0x7fffffffffffffffn : v <= -(2 ** 63) ? -0x8000000000000000n : BigInt(roundHalfEven(v));
      }
      return out;
    }
    case 'uint64': {
      const out = new BigUint64Array(n);
      for (let i = 0; i < n; i++) {
        const v = x[i]!;
        out[i] = v !== v || v <= 0 ? 0n : v >= 2 ** 64 ? 0xffffffffffffffffn : BigInt(roundHalfEven(v));
      }
      return out;
    }
    case 'int4':
    case 'uint4':
    case 'int2':
    case 'uint2': {
      const [lo, hi] = INT_RANGE[dtype]!;
      const bits = dtype === 'int4' || dtype === 'uint4' ? 4 : 2;
      const perByte = 8 / bits;
      const logPer = bits === 4 ? 1 : 2;
      const mask = (1 << bits) - 1;
      const out = new Uint8Array(Math.ceil(n / perByte));
      for (let i = 0; i < n; i++) {
        out[i >>> logPer]! |= (toIntSaturated(x[i]!, lo, hi) & mask) << ((i & (perByte - 1)) * bits);
      }
      return out;
    }
    default: {
      const [lo, hi] = INT_RANGE[dtype]!;
      const Ctor = DTYPES[dtype].array!;
      const out = new Ctor(n) as Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;
      for (let i = 0; i < n; i++) out[i] = toIntSaturated(x[i]!, lo, hi);
      return out;
    }
  }
}
