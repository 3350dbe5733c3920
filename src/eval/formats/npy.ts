/**
 * NumPy `.npy` arrays (format versions 1–3) and `.npz` archives (zip files of `.npy` members, stored or
 * deflated, as `np.savez` / `np.savez_compressed` write them). The zip container is read with `fflate`.
 * See https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html.
 */
import { unzipSync } from 'fflate';
import { LoadError, expected, oneOf } from '../../errors.js';
import type { DType, TypedArray } from '../../onnx/dtype.js';
import { alignedView, hexBytes, type RawTensor } from './raw.js';

type Ctor = { new (buf: ArrayBuffer): TypedArray; BYTES_PER_ELEMENT: number };

const KINDS: Record<string, { dtype: DType; ctor: Ctor }> = {
  b1: { dtype: 'bool', ctor: Uint8Array },
  i1: { dtype: 'int8', ctor: Int8Array },
  u1: { dtype: 'uint8', ctor: Uint8Array },
  i2: { dtype: 'int16', ctor: Int16Array },
  u2: { dtype: 'uint16', ctor: Uint16Array },
  i4: { dtype: 'int32', ctor: Int32Array },
  u4: { dtype: 'uint32', ctor: Uint32Array },
  i8: { dtype: 'int64', ctor: BigInt64Array },
  u8: { dtype: 'uint64', ctor: BigUint64Array },
  f2: { dtype: 'float16', ctor: Uint16Array },
  f4: { dtype: 'float32', ctor: Float32Array },
  f8: { dtype: 'float64', ctor: Float64Array },
};

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Parses one `.npy` file. C order only; big-endian data is byte-swapped. `file` names it in errors. */
export function parseNpy(buf: Uint8Array, file: string): RawTensor {
  if (buf.length < 10 || MAGIC.some((b, i) => buf[i] !== b)) {
    throw new LoadError(`${file} is not a .npy file: ${expected('the magic bytes 93 4e 55 4d 50 59 ("\\x93NUMPY")', 'its first 6 bytes', hexBytes(buf, 6))}`);
  }
  const major = buf[6]!;
  if (major < 1 || major > 3) {
    throw new LoadError(`${file} has an unsupported .npy format version: ${expected('1, 2 or 3', 'the version', major)}`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (buf.length < 8 + lenBytes) throw new LoadError(`${file} is truncated: the .npy header length is cut off`);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes;
  if (buf.length < start + headerLen) {
    throw new LoadError(`${file} is truncated: ${expected(`a ${headerLen}-byte .npy header`, 'the header', `${buf.length - start} bytes`)}`);
  }
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(buf.subarray(start, start + headerLen)).trim();
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!header.startsWith('{') || descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new LoadError(
      `${file} has a bad .npy header: ${expected("a dict with 'descr' (a simple dtype), 'fortran_order' and 'shape'", 'the header', header.slice(0, 200))}`,
    );
  }
  if (fortran === 'True') {
    throw new LoadError(
      `${file} is stored in Fortran (column-major) order, which is not supported: ${expected("'fortran_order': False", 'the header', "'fortran_order': True")}; save a C-ordered copy with np.save(path, np.ascontiguousarray(a))`,
    );
  }
  const m = /^([<>|=])([a-zA-Z]\d+)$/.exec(descr);
  const kind = m ? KINDS[m[2]!] : undefined;
  if (!m || !kind) {
    throw new LoadError(
      `${file} has an unsupported dtype: ${expected(`a numeric or bool dtype ${oneOf(Object.keys(KINDS))}`, "the header's 'descr'", descr)}`,
    );
  }
  const dims: number[] = [];
  for (const part of shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const n = Number(part.replace(/L$/, ''));
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new LoadError(`${file} has a bad .npy header: ${expected('non-negative integer dimensions', "the header's 'shape'", `(${shapeText})`)}`);
    }
    dims.push(n);
  }
  const count = dims.reduce((a, b) => a * b, 1);
  const need = count * kind.ctor.BYTES_PER_ELEMENT;
  const dataStart = start + headerLen;
  const have = buf.length - dataStart;
  if (have < need) {
    throw new LoadError(`${file} is truncated: ${expected(`${need} bytes of data (shape [${dims.join(', ')}], ${descr})`, 'the array data', `${have} bytes`)}`);
  }
  if (have > need) {
    throw new LoadError(`${file} is corrupt: ${expected(`${need} bytes of data (shape [${dims.join(', ')}], ${descr})`, 'the array data', `${have} bytes (${have - need} extra)`)}`);
  }
  const data = alignedView(kind.ctor as typeof Float32Array, buf.subarray(dataStart, dataStart + need), m[1] === '>');
  return { dtype: kind.dtype, dims, data };
}

/** The array names in an `.npz` archive (member names without `.npy`), in archive order. */
export function npzNames(buf: Uint8Array, file: string): string[] {
  const names: string[] = [];
  unzipNpz(buf, file, (name) => {
    names.push(name);
    return false;
  });
  return names;
}

/** Reads the named arrays from an `.npz` archive; a missing name is an error that lists those present. */
export function readNpz(buf: Uint8Array, file: string, wanted: readonly string[]): Map<string, RawTensor> {
  const want = new Set(wanted);
  const members = unzipNpz(buf, file, (name) => want.has(name));
  const out = new Map<string, RawTensor>();
  for (const name of wanted) {
    const bytes = members.get(name);
    if (!bytes) {
      throw new LoadError(`${file} has no array named ${JSON.stringify(name)} ${oneOf(npzNames(buf, file))}`);
    }
    out.set(name, parseNpy(bytes, `${file}[${name}]`));
  }
  return out;
}

function unzipNpz(buf: Uint8Array, file: string, keep: (name: string) => boolean): Map<string, Uint8Array> {
  if (buf.length < 4 || buf[0] !== 0x50 || buf[1] !== 0x4b) {
    throw new LoadError(`${file} is not an .npz (zip) file: ${expected('the zip magic bytes 50 4b ("PK")', 'its first bytes', hexBytes(buf))}`);
  }
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(buf, { filter: (f) => keep(f.name.replace(/\.npy$/, '')) });
  } catch (e) {
    throw new LoadError(`${file} is not a readable .npz archive (truncated or corrupt zip): ${(e as Error).message}`, { cause: e });
  }
  return new Map(Object.entries(files).map(([k, v]) => [k.replace(/\.npy$/, ''), v]));
}
