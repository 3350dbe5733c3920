/**
 * Single-tensor files: one serialized TensorProto per `.pb` file, the format of the ONNX conformance data
 * (`test_data_set_N/input_K.pb`, `output_K.pb`) and of `onnx.numpy_helper.from_array(...).SerializeToString()`.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { GraphError, LoadError, OnnxpressError } from '../errors.js';
import { TensorProtoSchema, decodeTensor, encodeTensor, tensorSource, type TensorProto } from './proto.js';
import type { Tensor } from './tensor.js';

/** Options for `loadTensor`. */
export interface LoadTensorOptions {
  /** Name used in error messages when loading from bytes. */
  source?: string;
}

/** A tensor with the name its file gave it (TensorProto's `name`, often empty). */
export interface NamedTensor {
  name: string;
  tensor: Tensor;
}

/**
 * Loads one TensorProto from a `.pb` file or from bytes. Empty, truncated or malformed files, unknown data
 * types, data that does not fit the dims, and tensors stored as external data give a LoadError naming the file.
 *
 * @example
 * ```ts
 * import { loadTensor } from 'onnxpress';
 * const x = await loadTensor('test_relu/test_data_set_0/input_0.pb');
 * x.dtype; // 'float32'
 * x.dims;  // [3, 4, 5]
 * ```
 */
export async function loadTensor(pathOrBytes: string | Uint8Array, options: LoadTensorOptions = {}): Promise<Tensor> {
  return (await loadNamedTensor(pathOrBytes, options)).tensor;
}

/**
 * Like `loadTensor`, but also returns the name stored in the file.
 *
 * @example
 * ```ts
 * const { name, tensor } = await loadNamedTensor('input_0.pb'); // name: 'x'
 * ```
 */
export async function loadNamedTensor(pathOrBytes: string | Uint8Array, options: LoadTensorOptions = {}): Promise<NamedTensor> {
  let bytes: Uint8Array;
  let source: string;
  if (typeof pathOrBytes === 'string') {
    source = pathOrBytes;
    try {
      bytes = await readFile(pathOrBytes);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new LoadError(`${source}: no such file`, { cause: e });
      if (code === 'EISDIR') throw new LoadError(`${source}: is a folder, not a tensor file`, { cause: e });
      throw new LoadError(`${source}: cannot read (${(e as Error).message})`, { cause: e });
    }
  } else {
    bytes = pathOrBytes;
    source = options.source ?? '(tensor bytes)';
  }
  return tensorFromBytes(bytes, source);
}

function tensorFromBytes(bytes: Uint8Array, source: string): NamedTensor {
  // an empty message is valid protobuf (every field absent), but never a tensor: say so plainly
  if (bytes.byteLength === 0) throw new LoadError(`${source}: the file is empty, not a TensorProto`);
  let tp: TensorProto;
  try {
    tp = fromBinary(TensorProtoSchema, bytes, { readUnknownFields: true });
  } catch (e) {
    throw new LoadError(`${source}: not a valid TensorProto: malformed or truncated protobuf (${(e as Error).message})`, { cause: e });
  }
  try {
    // no readExternal: a lone .pb file has no folder contract, so external data is refused by decodeTensor
    return { name: tp.name, tensor: decodeTensor(tp, { source }) };
  } catch (e) {
    if (e instanceof OnnxpressError) throw e;
    throw new LoadError(`${source}: cannot read the tensor (${(e as Error).message})`, { cause: e });
  }
}

/** Options for `saveTensor`. */
export interface SaveTensorOptions {
  /** TensorProto `name` to store (default: the name the tensor was loaded with, else none). */
  name?: string;
}

/**
 * Writes one tensor as a TensorProto `.pb` file (raw_data; strings in string_data). Atomic: the bytes go to a
 * temporary file that is renamed into place, so a failed save leaves no partial file behind.
 *
 * @example
 * ```ts
 * import { Tensor, saveTensor } from 'onnxpress';
 * await saveTensor(Tensor.from('float32', [2], [1, 2]), 'input_0.pb', { name: 'x' });
 * ```
 */
export async function saveTensor(tensor: Tensor, path: string, options: SaveTensorOptions = {}): Promise<void> {
  const bytes = encodeTensorFile(tensor, options);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, bytes, { flag: 'wx' });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new LoadError(`Cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * The bytes of a TensorProto `.pb` file for a tensor.
 *
 * @example
 * ```ts
 * const bytes = encodeTensorFile(Tensor.from('int64', [1], [7n]), { name: 'k' });
 * ```
 */
export function encodeTensorFile(tensor: Tensor, options: SaveTensorOptions = {}): Uint8Array {
  const name = options.name ?? tensorSource(tensor)?.name ?? '';
  // an unchanged loaded tensor is written from the message it was read from, so nothing is lost; a weight read
  // from external data is written inline (encodeTensor does that), since a lone .pb file has no data folder
  const tp = encodeTensor(tensor, name);
  try {
    return toBinary(TensorProtoSchema, tp, { writeUnknownFields: true });
  } catch (e) {
    throw new GraphError(`Cannot serialize tensor "${name}": ${(e as Error).message}`, { cause: e });
  }
}
