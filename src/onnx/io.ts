/**
 * Model files: loading (with external data read by ranges, so weights over 2 GiB load), and atomic saving
 * (temporary file, then rename; large models get their weights written as external data automatically).
 */
import { closeSync, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { StringStringEntryProtoSchema } from 'onnx-buf';
import { GraphError, LoadError, OnnxpressError } from '../errors.js';
import { byteLength, dtypeFromCode, elementCount } from './dtype.js';
import type { Model } from './ir.js';
import {
  TensorProto_DataLocation,
  decodeModelProto,
  modelFromProto,
  modelToProto,
  serializeModelProto,
  tensorSource,
  type TensorProto,
} from './proto.js';
import type { Tensor } from './tensor.js';

/** Options for `loadModel`. */
export interface LoadOptions {
  /** Folder that external-data locations are relative to (default: the model file's folder). */
  baseDir?: string;
  /** Name used in error messages when loading from bytes. */
  source?: string;
}

/**
 * Loads an ONNX model from a file or from bytes. Tensor data stays a view of the file bytes; external data is
 * read by ranges from files beside the model (never from outside its folder).
 *
 * @example
 * ```ts
 * import { loadModel } from 'onnxpress';
 * const model = await loadModel('fixtures/fmnist-cnn.onnx');
 * console.log(model.graph.nodes.length, model.opset());
 * ```
 */
export async function loadModel(pathOrBytes: string | Uint8Array, options: LoadOptions = {}): Promise<Model> {
  let bytes: Uint8Array;
  let source: string;
  let baseDir = options.baseDir;
  if (typeof pathOrBytes === 'string') {
    source = pathOrBytes;
    baseDir ??= dirname(resolve(pathOrBytes));
    try {
      bytes = await readFile(pathOrBytes);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new LoadError(`${pathOrBytes}: no such file`, { cause: e });
      if (code === 'EISDIR') throw new LoadError(`${pathOrBytes}: is a folder, not a model file`, { cause: e });
      if (code === 'ERR_FS_FILE_TOO_LARGE' || e instanceof RangeError) {
        throw new LoadError(`${pathOrBytes}: larger than 2 GiB, which protobuf cannot hold: store the weights as external data`, { cause: e });
      }
      throw new LoadError(`${pathOrBytes}: cannot read (${(e as Error).message})`, { cause: e });
    }
  } else {
    bytes = pathOrBytes;
    source = options.source ?? '(model bytes)';
  }
  return modelFromBytes(bytes, source, baseDir);
}

function modelFromBytes(bytes: Uint8Array, source: string, baseDir: string | undefined): Model {
  const proto = decodeModelProto(bytes, source);
  const reader = new ExternalReader(source, baseDir);
  try {
    const model = modelFromProto(proto, { source, readExternal: (t) => reader.read(t) });
    checkAcyclic(model, source);
    return model;
  } catch (e) {
    if (e instanceof OnnxpressError) throw e;
    // anything else thrown while building the IR from a hostile file is still a load error, not a crash
    throw new LoadError(`${source}: cannot build a graph from this model (${(e as Error).message})`, { cause: e });
  } finally {
    reader.close();
  }
}

function checkAcyclic(model: Model, source: string): void {
  for (const g of [model.graph, ...[...model.graph.allNodes()].flatMap((n) => n.subgraphs())]) {
    const order = [...g.nodes];
    try {
      g.sort();
    } catch (e) {
      if (e instanceof GraphError) throw new LoadError(`${source}: ${e.message}`, { cause: e });
      throw e;
    } finally {
      g.nodes.splice(0, g.nodes.length, ...order); // loading must not reorder a valid file
    }
  }
}

/** External-data keys of a TensorProto, as a record. */
function externalEntries(t: TensorProto): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of t.externalData) out[e.key] = e.value;
  return out;
}

/**
 * Reads external tensor data by byte ranges (so data files over 2 GiB work), refusing locations that are
 * absolute or resolve outside the model's folder (symbolic links included): a known attack on ONNX loaders.
 */
class ExternalReader {
  readonly #fds = new Map<string, { fd: number; size: number }>();
  #realBase?: string;
  constructor(
    readonly source: string,
    readonly baseDir: string | undefined,
  ) {}

  read(t: TensorProto): Uint8Array {
    const what = `${this.source}: tensor "${t.name}"`;
    if (!this.baseDir) throw new LoadError(`${what} is stored as external data; load the model from its file or pass baseDir`);
    const e = externalEntries(t);
    const location = e.location;
    if (!location) throw new LoadError(`${what} is marked external but has no "location"`);
    if (location.includes('\0')) throw new LoadError(`${what}: external data location contains a NUL byte`);
    if (isAbsolute(location) || /^[a-zA-Z]:[\\/]/.test(location) || location.startsWith('\\')) {
      throw new LoadError(`${what}: external data location "${location}" is an absolute path; locations must be relative to the model's folder`);
    }
    const base = resolve(this.baseDir);
    const file = resolve(base, location);
    const rel = relative(base, file);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
      throw new LoadError(`${what}: external data location "${location}" leaves the model's folder ${base}`);
    }
    let entry = this.#fds.get(file);
    if (!entry) {
      let real: string;
      try {
        real = realpathSync(file);
      } catch {
        throw new LoadError(`${what}: external data file "${location}" does not exist (looked in ${base})`);
      }
      this.#realBase ??= realpathSync(base);
      const realRel = relative(this.#realBase, real);
      if (realRel.startsWith('..') || isAbsolute(realRel)) {
        throw new LoadError(`${what}: external data file "${location}" links to ${real}, outside the model's folder`);
      }
      const fd = openSync(real, 'r');
      const st = fstatSync(fd);
      if (!st.isFile()) {
        closeSync(fd);
        throw new LoadError(`${what}: external data location "${location}" is not a file`);
      }
      entry = { fd, size: st.size };
      this.#fds.set(file, entry);
    }
    const dtype = dtypeFromCode(t.dataType);
    if (!dtype || dtype === 'string') throw new LoadError(`${what}: external data needs a numeric data type, found ${t.dataType}`);
    const want = byteLength(dtype, elementCount(t.dims.map(Number)));
    const offset = parseNonNegative(e.offset ?? '0', 'offset', what);
    const length = e.length !== undefined ? parseNonNegative(e.length, 'length', what) : want;
    if (length !== want) throw new LoadError(`${what}: external data length ${length} does not match ${want} bytes for ${dtype} [${t.dims.join(', ')}]`);
    if (offset + length > entry.size) {
      throw new LoadError(`${what}: external data range ${offset}..${offset + length} is past the end of "${location}" (${entry.size} bytes)`);
    }
    const out = new Uint8Array(length);
    // readSync takes at most 2 GiB per call; positions beyond 2^31 are fine as numbers
    for (let done = 0; done < length; ) {
      const n = readSync(entry.fd, out, done, Math.min(length - done, 1 << 30), offset + done);
      if (n === 0) throw new LoadError(`${what}: "${location}" ended early`);
      done += n;
    }
    return out;
  }

  close(): void {
    for (const { fd } of this.#fds.values()) closeSync(fd);
    this.#fds.clear();
  }
}

function parseNonNegative(s: string, key: string, what: string): number {
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new LoadError(`${what}: external data "${key}" must be a non-negative integer, found "${s}"`);
  return Number(s);
}

/** Options for `saveModel`. */
export interface SaveOptions {
  /**
   * Where tensor data goes: `'auto'` (default) writes it inline unless the model is too large for one protobuf
   * (over ~1.8 GiB of weights) or was loaded with external data; `true` always writes large tensors to a file
   * beside the model; `false` always inline.
   */
  externalData?: 'auto' | boolean;
  /** File name of the external data, relative to the model's folder (default: `<model file name>.data`). */
  externalDataFile?: string;
  /** Tensors smaller than this many bytes stay inline when external data is written (default 1024). */
  externalThreshold?: number;
  /** @internal Total weight bytes above which `'auto'` writes external data (default ~1.8 GiB); tests lower it. */
  inlineLimit?: number;
}

/** What `saveModel` wrote. */
export interface SaveResult {
  path: string;
  bytes: number;
  externalDataFile?: string;
  externalBytes?: number;
}

/** Protobuf messages cannot exceed 2 GiB; keep a margin for the graph itself. */
const INLINE_LIMIT = 1.8 * 1024 ** 3;

/**
 * Saves a model atomically: data is written to temporary files that are renamed into place only when complete,
 * so a failed save leaves nothing behind and never half-overwrites an existing file.
 *
 * @example
 * ```ts
 * await saveModel(model, 'out/model.onnx');                       // inline, or external when huge
 * await saveModel(model, 'out/big.onnx', { externalData: true }); // writes out/big.onnx.data too
 * ```
 */
export async function saveModel(model: Model, path: string, options: SaveOptions = {}): Promise<SaveResult> {
  const mode = options.externalData ?? 'auto';
  const threshold = options.externalThreshold ?? 1024;
  let total = 0;
  let loadedExternal = false;
  for (const g of graphsOf(model)) {
    for (const v of g.initializers.values()) {
      if (!v.initializer) continue;
      total += v.initializer.byteLength;
      if (tensorSource(v.initializer)?.dataLocation === TensorProto_DataLocation.EXTERNAL) loadedExternal = true;
    }
  }
  const external = mode === true || (mode === 'auto' && (total > (options.inlineLimit ?? INLINE_LIMIT) || loadedExternal));
  const dataName = options.externalDataFile ?? `${basename(path)}.data`;
  if (external && (isAbsolute(dataName) || dataName.split(/[\\/]/).includes('..'))) {
    throw new GraphError(`externalDataFile "${dataName}" must be a plain relative path inside the model's folder`);
  }
  const dir = dirname(resolve(path));
  const jobs: { tensor: Tensor; offset: number }[] = [];
  let dataSize = 0;
  // typed(): a pass may leave NaN in an int field, which BigInt refuses; that is a GraphError, and nothing is written
  const proto = typed(path, () => modelToProto(model, {
    placeTensor: (tensor, tp) => {
      const big = tensor.dtype !== 'string' && tensor.byteLength >= threshold;
      const wasExternal = tp.dataLocation === TensorProto_DataLocation.EXTERNAL;
      if (external && big) {
        // 64-byte alignment lets runtimes map the data file and view it as any element type
        const offset = Math.ceil(dataSize / 64) * 64;
        dataSize = offset + tensor.byteLength;
        jobs.push({ tensor, offset });
        const out = Object.assign(Object.create(Object.getPrototypeOf(tp)), tp) as TensorProto;
        delete (out as Partial<TensorProto>).rawData;
        out.dataLocation = TensorProto_DataLocation.EXTERNAL;
        out.externalData = [
          create(StringStringEntryProtoSchema, { key: 'location', value: dataName }),
          create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
          create(StringStringEntryProtoSchema, { key: 'length', value: String(tensor.byteLength) }),
        ];
        return out;
      }
      if (wasExternal) {
        // bring it inline: the loader already read its bytes
        const out = Object.assign(Object.create(Object.getPrototypeOf(tp)), tp) as TensorProto;
        delete (out as Partial<TensorProto>).dataLocation;
        out.externalData = [];
        out.rawData = tensor.bytes() as TensorProto['rawData'];
        return out;
      }
      return tp;
    },
  }));
  let chunks: Uint8Array[];
  try {
    chunks = serializeModelProto(proto);
  } catch (e) {
    throw new GraphError(`Cannot serialize the model for ${path}: ${(e as Error).message}${external ? '' : ' (try externalData: true)'}`, { cause: e });
  }
  // renaming onto a folder fails only after the data file is in place: refuse before writing anything
  if ((await stat(path).catch(() => undefined))?.isDirectory()) throw new LoadError(`Cannot write ${path}: it is a folder`);
  const tag = `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const modelTmp = path + tag;
  const dataPath = join(dir, dataName);
  const dataTmp = dataPath + tag;
  try {
    if (jobs.length) await writeChunks(dataTmp, jobs.map((j) => ({ offset: j.offset, bytes: j.tensor.bytes() })));
    let at = 0;
    await writeChunks(
      modelTmp,
      chunks.map((c) => {
        const chunk = { offset: at, bytes: c };
        at += c.byteLength;
        return chunk;
      }),
    );
    if (jobs.length) await rename(dataTmp, dataPath);
    await rename(modelTmp, path);
  } catch (e) {
    await rm(modelTmp, { force: true });
    await rm(dataTmp, { force: true });
    throw new LoadError(`Cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
  const result: SaveResult = { path, bytes: chunks.reduce((n, c) => n + c.byteLength, 0) };
  if (jobs.length) {
    result.externalDataFile = dataPath;
    result.externalBytes = (await stat(dataPath)).size;
  }
  return result;
}

/** Runs an encoding step so that whatever it throws is an OnnxpressError naming the target file. */
function typed<T>(path: string, encode: () => T): T {
  try {
    return encode();
  } catch (e) {
    if (e instanceof OnnxpressError) throw e;
    throw new GraphError(`Cannot serialize the model for ${path}: ${(e as Error).message}`, { cause: e });
  }
}

async function writeChunks(path: string, chunks: { offset: number; bytes: Uint8Array }[]): Promise<void> {
  const fh = await open(path, 'wx');
  try {
    for (const c of chunks) {
      for (let done = 0; done < c.bytes.byteLength; ) {
        const { bytesWritten } = await fh.write(c.bytes, done, Math.min(c.bytes.byteLength - done, 1 << 30), c.offset + done);
        done += bytesWritten;
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function* graphsOf(model: Model) {
  yield model.graph;
  for (const n of model.graph.allNodes()) yield* n.subgraphs();
}

