/**
 * IDX files (the MNIST / Fashion-MNIST container): `00 00 <type> <ndims>`, then `ndims` big-endian uint32 sizes,
 * then the big-endian elements in row-major order. See http://yann.lecun.com/exdb/mnist/.
 */
import { LoadError, expected } from '../../errors.js';
import type { DType } from '../../onnx/dtype.js';
import { alignedView, hexBytes, type RawTensor } from './raw.js';

const TYPES: Record<number, { dtype: DType; ctor: typeof Uint8Array | typeof Int8Array | typeof Int16Array | typeof Int32Array | typeof Float32Array | typeof Float64Array }> = {
  0x08: { dtype: 'uint8', ctor: Uint8Array },
  0x09: { dtype: 'int8', ctor: Int8Array },
  0x0b: { dtype: 'int16', ctor: Int16Array },
  0x0c: { dtype: 'int32', ctor: Int32Array },
  0x0d: { dtype: 'float32', ctor: Float32Array },
  0x0e: { dtype: 'float64', ctor: Float64Array },
};

/** Parses a (decompressed) IDX file. `file` names it in errors. */
export function parseIdx(buf: Uint8Array, file: string): RawTensor {
  const type = TYPES[buf[2] ?? -1];
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0 || !type || buf[3] === 0) {
    throw new LoadError(
      `${file} is not an IDX file: ${expected('the magic bytes 00 00 <type 08|09|0b|0c|0d|0e> <ndims ≥ 1>', 'its first 4 bytes', hexBytes(buf))}`,
    );
  }
  const ndims = buf[3]!;
  const headerLen = 4 + 4 * ndims;
  if (buf.length < headerLen) {
    throw new LoadError(`${file} is truncated: ${expected(`a ${headerLen}-byte header (${ndims} dimensions)`, 'the IDX header', `${buf.length} bytes`)}`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const need = count * type.ctor.BYTES_PER_ELEMENT;
  const have = buf.length - headerLen;
  if (have < need) {
    throw new LoadError(
      `${file} is truncated: ${expected(`${need} bytes of data (${dims.join('×')} ${type.dtype})`, 'the IDX data', `${have} bytes`)}`,
    );
  }
  if (have > need) {
    throw new LoadError(`${file} is corrupt: ${expected(`${need} bytes of data (${dims.join('×')} ${type.dtype})`, 'the IDX data', `${have} bytes (${have - need} extra)`)}`);
  }
  const bytes = buf.subarray(headerLen);
  const data = type.ctor === Uint8Array ? Uint8Array.from(bytes) : alignedView(type.ctor as typeof Int16Array, bytes, true);
  return { dtype: type.dtype, dims, data };
}
