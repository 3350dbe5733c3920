/**
 * The TensorFlow.js model format as files hold it: `model.json` (a GraphDef in JSON for graph models, a Keras
 * config for layers models, and a weights manifest) plus binary weight shards. Types here follow the JSON that
 * `tf.loadGraphModel` / `tf.loadLayersModel` read (tfjs-converter's `compiled_api` and `io/types`), so that
 * onnxpress reads and writes the files without importing TensorFlow.js.
 */
import { LoadError } from '../../errors.js';
import { float16ToFloat32 } from '../../onnx/codecs.js';

/** One attribute of a TF NodeDef in its JSON form: exactly one field is set. Integers are strings (int64). */
export interface TfAttr {
  s?: string;
  i?: string;
  f?: number;
  b?: boolean;
  type?: string;
  shape?: TfShape;
  list?: { s?: string[]; i?: string[]; f?: number[]; b?: boolean[]; type?: string[]; shape?: TfShape[] };
  tensor?: { dtype: string; tensorShape: TfShape };
}

/** A TensorShapeProto in JSON: dims with sizes as strings, -1 for unknown. */
export interface TfShape {
  dim?: { size: string }[];
  unknownRank?: boolean;
}

/** A TF NodeDef in JSON. Inputs are `node` or `node:index`. */
export interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfAttr>;
  device?: string;
}

/** One weight of a manifest group: its bytes follow the previous weight's in the group's concatenated shards. */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool' | 'string' | 'complex64' | string;
  /** Quantized storage (tfjs-converter's --quantize_*): value = q * scale + min, or float16 bits. */
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; scale?: number; min?: number; original_dtype?: string };
}

export interface WeightsGroup {
  paths: string[];
  weights: WeightSpec[];
}

/** What `model.json` holds. */
export interface TfjsModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology: unknown;
  weightsManifest: WeightsGroup[];
  signature?: { inputs?: Record<string, TfTensorInfo>; outputs?: Record<string, TfTensorInfo> };
  userDefinedMetadata?: Record<string, unknown>;
}

export interface TfTensorInfo {
  name: string;
  dtype?: string;
  tensorShape?: TfShape;
}

/** The GraphDef of a graph model. */
export interface TfGraphDef {
  node: TfNode[];
  library?: unknown;
  versions?: { producer?: number; minConsumer?: number };
}

/** Shard size: tfjs-converter's default (4 MiB), small enough for browser caches and parallel fetches. */
export const SHARD_BYTES = 4 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------------
// attribute helpers

/** Base64 of a UTF-8 string, as TF JSON stores the `s` fields. */
export function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

/** Decodes a base64 `s` field. */
export function unb64(s: string | undefined): string {
  return s === undefined ? '' : Buffer.from(s, 'base64').toString('utf8');
}

export const tfAttr = {
  s: (v: string): TfAttr => ({ s: b64(v) }),
  i: (v: number): TfAttr => ({ i: String(v) }),
  f: (v: number): TfAttr => ({ f: v }),
  b: (v: boolean): TfAttr => ({ b: v }),
  type: (v: string): TfAttr => ({ type: v }),
  ints: (v: readonly number[]): TfAttr => ({ list: { i: v.map(String) } }),
  strings: (v: readonly string[]): TfAttr => ({ list: { s: v.map(b64) } }),
  shape: (dims: readonly number[] | undefined): TfAttr => (dims ? { shape: { dim: dims.map((d) => ({ size: String(d) })) } } : { shape: { unknownRank: true } }),
};

/** Reads an attribute as an integer list (`list.i`), or the fallback. */
export function attrInts(a: TfAttr | undefined, fallback: number[] = []): number[] {
  return a?.list?.i ? a.list.i.map(Number) : fallback;
}

/** Reads an attribute as a string list (`list.s`, base64). */
export function attrStrings(a: TfAttr | undefined): string[] {
  return a?.list?.s ? a.list.s.map(unb64) : [];
}

/** Reads an attribute as a number (`i` or `f`), or the fallback. */
export function attrNumber(a: TfAttr | undefined, fallback: number): number {
  if (a?.i !== undefined) return Number(a.i);
  if (a?.f !== undefined) return Number(a.f);
  return fallback;
}

/** Dims of a TF shape; -1 for unknown sizes; undefined for unknown rank. */
export function shapeDims(s: TfShape | undefined): number[] | undefined {
  if (!s || s.unknownRank) return undefined;
  return (s.dim ?? []).map((d) => Number(d.size));
}

// ---------------------------------------------------------------------------------------------------------------
// weights

/** A decoded weight: float32 or int32 elements (bool is held as int32 0/1). */
export interface DecodedWeight {
  name: string;
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Bytes a weight takes in the shards. */
function storedBytes(w: WeightSpec, where: string): number {
  const n = elementCount(w.shape);
  if (!Array.isArray(w.shape) || w.shape.some((d) => !Number.isInteger(d) || d < 0)) throw new LoadError(`${where}: weight "${w.name}" has an invalid shape ${JSON.stringify(w.shape)}`);
  const q = w.quantization?.dtype;
  if (q === 'uint8') return n;
  if (q === 'uint16' || q === 'float16') return 2 * n;
  if (q !== undefined) throw new LoadError(`${where}: weight "${w.name}" uses quantization "${String(q)}", which is not supported (uint8, uint16, float16 are)`);
  if (w.dtype === 'float32' || w.dtype === 'int32') return 4 * n;
  if (w.dtype === 'bool') return n;
  throw new LoadError(`${where}: weight "${w.name}" has dtype "${w.dtype}", which is not supported (float32, int32, bool are)`);
}

/** Total bytes the manifest's weights take, for checking weight files against it. */
export function manifestBytes(manifest: readonly WeightsGroup[], where = 'model.json'): number {
  let n = 0;
  for (const g of manifest) for (const w of g.weights) n += storedBytes(w, where);
  return n;
}

/**
 * Decodes every weight of a manifest from the concatenation of all groups' shards (in manifest order), applying
 * tfjs's weight quantization (affine uint8/uint16, float16). Throws a LoadError naming the weight when the bytes
 * run short.
 */
export function decodeWeights(manifest: readonly WeightsGroup[], bytes: Uint8Array, where = 'model.json'): Map<string, DecodedWeight> {
  const out = new Map<string, DecodedWeight>();
  const need = manifestBytes(manifest, where);
  if (bytes.byteLength < need) throw new LoadError(`${where}: the weight files hold ${bytes.byteLength} bytes but the manifest needs ${need}`);
  let at = 0;
  for (const g of manifest) {
    for (const w of g.weights) {
      const size = storedBytes(w, where);
      const slice = bytes.slice(at, at + size); // a copy: aligned, and independent of the file buffer
      at += size;
      const n = elementCount(w.shape);
      const q = w.quantization;
      let data: Float32Array | Int32Array;
      const dtype: 'float32' | 'int32' = w.dtype === 'float32' ? 'float32' : 'int32';
      if (q?.dtype === 'float16') {
        data = float16ToFloat32(new Uint16Array(slice.buffer, 0, n));
      } else if (q) {
        const raw = q.dtype === 'uint8' ? slice : new Uint16Array(slice.buffer, 0, n);
        const scale = q.scale ?? 1;
        const min = q.min ?? 0;
        const f = Float32Array.from(raw as ArrayLike<number>, (v) => v * scale + min);
        data = dtype === 'int32' ? Int32Array.from(f, Math.round) : f;
      } else if (w.dtype === 'bool') {
        data = Int32Array.from(slice);
      } else {
        data = dtype === 'float32' ? new Float32Array(slice.buffer, 0, n) : new Int32Array(slice.buffer, 0, n);
      }
      out.set(w.name, { name: w.name, dtype, shape: [...w.shape], data });
    }
  }
  return out;
}

/** Splits bytes into shards of at most `shardBytes`, named as tfjs-converter names them. */
export function shard(bytes: Uint8Array, group = 1, shardBytes = SHARD_BYTES): { path: string; data: Uint8Array }[] {
  const count = Math.max(1, Math.ceil(bytes.byteLength / shardBytes));
  return Array.from({ length: count }, (_, i) => ({
    path: `group${group}-shard${i + 1}of${count}.bin`,
    data: bytes.subarray(i * shardBytes, Math.min(bytes.byteLength, (i + 1) * shardBytes)),
  }));
}
