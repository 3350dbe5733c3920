/**
 * Tensors: an element type, dims, and data held either as little-endian raw bytes (usually a zero-copy view
 * of the model file) or as a typed array. A tensor is immutable by convention: a pass that changes weights
 * makes a new Tensor, which is how the writer knows what it must re-encode.
 */
import { GraphError, expected } from '../errors.js';
import { DTYPES, byteLength, elementCount, type DType, type TypedArray } from './dtype.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Data a tensor can be made from: a typed array of the dtype's storage type, plain numbers or bigints. */
export type TensorInit = TypedArray | readonly number[] | readonly bigint[];

/**
 * An ONNX tensor value: dtype, dims and data.
 *
 * @example
 * ```ts
 * const w = Tensor.from('float32', [2, 2], [1, 2, 3, 4]);
 * w.data<Float32Array>()[3]; // 4
 * ```
 */
export class Tensor {
  readonly dtype: DType;
  readonly dims: readonly number[];
  #raw?: Uint8Array;
  #typed?: TypedArray;
  #strings?: Uint8Array[];

  private constructor(dtype: DType, dims: readonly number[]) {
    this.dtype = dtype;
    this.dims = Object.freeze([...dims]);
    for (const d of dims) {
      if (!Number.isInteger(d) || d < 0) throw new GraphError(expected('non-negative integer dims', 'a tensor', dims));
    }
  }

  /**
   * A tensor over raw little-endian bytes, as stored in `raw_data` (sub-byte types packed, low bits first).
   * The bytes are not copied.
   *
   * @example
   * ```ts
   * const t = Tensor.fromBytes('uint8', [3], new Uint8Array([1, 2, 3]));
   * ```
   */
  static fromBytes(dtype: DType, dims: readonly number[], bytes: Uint8Array): Tensor {
    if (dtype === 'string') throw new GraphError('String tensors have no raw byte form: use Tensor.fromStrings');
    const t = new Tensor(dtype, dims);
    const want = byteLength(dtype, elementCount(dims));
    if (bytes.byteLength !== want) {
      throw new GraphError(expected(`${want} bytes (${dtype} ${JSON.stringify(dims)})`, 'tensor data', `${bytes.byteLength} bytes`));
    }
    t.#raw = bytes;
    return t;
  }

  /**
   * A tensor over a typed array (not copied) or over plain numbers / bigints (converted to the dtype's storage array).
   * For float16, bfloat16, float8 and the 4- and 2-bit types the array holds raw bits (packed for sub-byte types);
   * see `codecs.ts` to convert from float32.
   *
   * @example
   * ```ts
   * Tensor.from('int64', [2], [1n, 2n]);
   * Tensor.from('float32', [], new Float32Array([0.5])); // a scalar
   * ```
   */
  static from(dtype: DType, dims: readonly number[], data: TensorInit): Tensor {
    const info = DTYPES[dtype];
    if (!info.array) throw new GraphError('String tensors are made with Tensor.fromStrings');
    const t = new Tensor(dtype, dims);
    const count = elementCount(dims);
    const perElement = dtype === 'complex64' || dtype === 'complex128' ? 2 : 1;
    const want = info.bits < 8 ? byteLength(dtype, count) : count * perElement;
    let arr: TypedArray;
    if (ArrayBuffer.isView(data)) {
      if (!(data instanceof info.array)) {
        throw new GraphError(expected(`a ${info.array.name} for ${dtype}`, 'tensor data', data.constructor.name));
      }
      arr = data as TypedArray;
    } else {
      arr = new info.array(want);
      const big = arr instanceof BigInt64Array || arr instanceof BigUint64Array;
      (data as readonly (number | bigint)[]).forEach((v, i) => {
        (arr as unknown as (number | bigint)[])[i] = big ? BigInt(v) : Number(v);
      });
      if (data.length !== want) throw new GraphError(expected(`${want} values for dims ${JSON.stringify(dims)}`, 'tensor data', `${data.length}`));
    }
    if (arr.length !== want) {
      throw new GraphError(expected(`${want} elements for dims ${JSON.stringify(dims)}`, `${dtype} tensor data`, `${arr.length}`));
    }
    t.#typed = arr;
    return t;
  }

  /**
   * A string tensor (ONNX strings are byte strings; UTF-8 is the convention).
   *
   * @example
   * ```ts
   * Tensor.fromStrings([2], ['a', 'b']);
   * ```
   */
  static fromStrings(dims: readonly number[], values: readonly (string | Uint8Array)[]): Tensor {
    const t = new Tensor('string', dims);
    if (values.length !== elementCount(dims)) {
      throw new GraphError(expected(`${elementCount(dims)} strings`, 'string tensor data', `${values.length}`));
    }
    t.#strings = values.map((v) => (typeof v === 'string' ? new TextEncoder().encode(v) : v));
    return t;
  }

  /** Number of elements. */
  get size(): number {
    return elementCount(this.dims);
  }

  /** Bytes of the raw little-endian form (0 for strings). */
  get byteLength(): number {
    return this.dtype === 'string' ? 0 : byteLength(this.dtype, this.size);
  }

  /** True when the data is still the raw-bytes view it was made from (no typed array was materialized). */
  get isRawView(): boolean {
    return this.#raw !== undefined;
  }

  /**
   * The raw little-endian bytes, as written to `raw_data`. A view when the tensor was made from bytes or
   * from a typed array on a little-endian machine.
   */
  bytes(): Uint8Array {
    if (this.#raw) return this.#raw;
    if (!this.#typed) throw new GraphError('String tensors have no raw byte form');
    if (!LITTLE_ENDIAN) throw new GraphError('Big-endian machines are not supported');
    const a = this.#typed;
    // sub-byte types are held packed already, so the array's bytes are the wire bytes
    return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  }

  /**
   * The elements as the dtype's typed array (raw bits for float16/bfloat16/float8/4-bit types). A view of the
   * file bytes when they are aligned; otherwise a copy, made once and kept.
   */
  data<T extends TypedArray = TypedArray>(): T {
    if (this.#typed) return this.#typed as T;
    const info = DTYPES[this.dtype];
    if (!info.array || !this.#raw) throw new GraphError(`A ${this.dtype} tensor has no typed-array form: use strings()`);
    const raw = this.#raw;
    const width = info.array.BYTES_PER_ELEMENT;
    const count = raw.byteLength / width;
    let arr: TypedArray;
    if (raw.byteOffset % width === 0) {
      arr = new info.array(raw.buffer, raw.byteOffset, count);
    } else {
      // protobuf puts raw_data at whatever offset the message lays it out at: realign by copying
      const copy = new Uint8Array(raw.byteLength);
      copy.set(raw);
      arr = new info.array(copy.buffer, 0, count);
    }
    this.#typed = arr;
    return arr as T;
  }

  /** The elements of a string tensor, as bytes. */
  strings(): Uint8Array[] {
    if (!this.#strings) throw new GraphError(`A ${this.dtype} tensor is not a string tensor`);
    return this.#strings;
  }

  /** The elements as JavaScript numbers (int64 through Number, which is exact up to 2^53). Not for packed types. */
  toNumbers(): number[] {
    const d = this.data();
    return Array.from(d as ArrayLike<number | bigint>, (v) => Number(v));
  }
}
