/**
 * Sparse storage of pruned weights: an initializer with many zeros can be written as an ONNX `sparse_initializer`
 * (COO: the non-zero values [NNZ] and their linearized positions as int64 [NNZ], the 1-D index form; onnx's checker
 * requires int64 indices). That costs 4 + 8 = 12 bytes per non-zero float32 instead of 4 per element, so it pays
 * only below 1/3 density: at 80% sparsity a weight takes 0.6× its dense bytes, at 90% 0.3×.
 *
 * onnxruntime-node 1.30 loads sparse initializers for any op (checked by the tests on Conv and Gemm weights): it
 * turns each into a dense tensor while loading the model. So sparse storage makes the *file* smaller, not the
 * model in memory, and not faster: onnxruntime's CPU kernels have no sparse Conv or Gemm, and neither unstructured
 * nor 2:4 zeros make them run faster. Only structured (channel) pruning cuts latency on CPU.
 *
 * Other consumers may refuse it: onnx's checker accepts the structure, but its strict type inference (`full_check`)
 * types a sparse initializer as `sparse_tensor`, which Conv and Gemm do not take. Write sparse only for onnxruntime.
 *
 * Modes: `auto` stores a weight sparse when that is smaller; `on` stores every prunable weight with at least one
 * zero sparse (even when larger); `off` keeps everything dense.
 *
 * `indices: 'compact'` (not standard ONNX) writes the indices in the smallest of int8, int16 and int32 that holds
 * the largest position: 4 + 4 (or 2, or 1) bytes per non-zero float32. onnxruntime 1.30 reads them (checked by the
 * tests); onnx's checker refuses them ("Sparse tensor indices must have INT64 type").
 *
 * gzip is the other way to ship zeros: a dense pruned model gzips about as small as, or smaller than, the same
 * model stored sparse (the zeros compress to almost nothing), and it needs nothing from the runtime.
 */
import { gzipSync } from 'node:zlib';
import { z } from 'zod';
import { isConstantInitializer } from '../onnx/hygiene/constants.js';
import type { Model, Value } from '../onnx/ir.js';
import { decodeSparseTensor, encodeModel, encodeSparseTensor } from '../onnx/proto.js';
import { Tensor } from '../onnx/tensor.js';
import { PRUNABLE_DTYPES, PRUNABLE_OPS, readFloat32 } from './common.js';

/**
 * Options of `toSparseStorage`.
 *
 * @example
 * ```ts
 * sparseStorageOptions.parse({ mode: 'auto' });
 * ```
 */
export const sparseStorageOptions = z.object({
  mode: z.enum(['auto', 'on', 'off']).default('auto').describe("'auto': sparse where smaller; 'on': every prunable weight with zeros; 'off': all dense"),
  minElements: z.number().int().min(1).default(64).describe('Weights with fewer elements stay dense (auto)'),
  indices: z
    .enum(['int64', 'compact'])
    .default('int64')
    .describe("'int64': standard ONNX; 'compact': the smallest integer type that holds the positions (onnxruntime reads it, onnx's checker does not)"),
});
export type SparseStorageOptions = z.input<typeof sparseStorageOptions>;

/** One weight in the storage report. */
export interface StorageRow {
  weight: string;
  elements: number;
  nonzero: number;
  denseBytes: number;
  /** Bytes of the sparse form (values + indices). */
  sparseBytes: number;
  stored: 'sparse' | 'dense';
}

/** What `toSparseStorage` did, with the model's size before and after. */
export interface StorageReport {
  mode: 'auto' | 'on' | 'off';
  indices: 'int64' | 'compact';
  weights: StorageRow[];
  /** Serialized model bytes, all dense / as stored. */
  rawBytes: [number, number];
  /** gzip (zlib, default level) of the serialized model, all dense / as stored. */
  gzipBytes: [number, number];
  notes: string[];
}

/**
 * The serialized size of a model, raw and gzipped (zlib's default level).
 *
 * @example
 * ```ts
 * const { raw, gzip } = modelSize(model);
 * ```
 */
export function modelSize(model: Model): { raw: number; gzip: number } {
  const bytes = encodeModel(model);
  return { raw: bytes.byteLength, gzip: gzipSync(bytes).byteLength };
}

/** Weights that may be stored sparse: constant float initializers of the main graph read as Conv/ConvTranspose/Gemm/MatMul weights. */
function candidates(model: Model): Value[] {
  const ops = new Set<string>(PRUNABLE_OPS);
  const out: Value[] = [];
  for (const v of model.graph.initializers.values()) {
    const t = v.initializer;
    if (!t || !PRUNABLE_DTYPES.includes(t.dtype) || !isConstantInitializer(v) || v.isGraphInput || v.isGraphOutput) continue;
    if (v.uses.length && v.uses.every((u) => u.index === 1 && ops.has(u.node.opType))) out.push(v);
  }
  return out;
}

/**
 * Writes pruned weights as `sparse_initializer` entries (in place) and reports raw and gzip sizes before and after.
 * The sparse values keep the weight's dtype; indices are int64 linearized positions, ascending.
 *
 * @example
 * ```ts
 * const pruned = (await pruneMagnitude(model, { sparsity: 0.8 })).model;
 * const report = toSparseStorage(pruned, { mode: 'auto' });
 * report.rawBytes; // [dense, stored]
 * ```
 */
export function toSparseStorage(model: Model, options: SparseStorageOptions = {}): StorageReport {
  const o = sparseStorageOptions.parse(options);
  const dense = modelSize(model);
  const rows: StorageRow[] = [];
  const notes: string[] = [];
  const g = model.graph;
  for (const v of candidates(model)) {
    const t = v.initializer!;
    const values = readFloat32(t);
    let nnz = 0;
    for (let i = 0; i < values.length; i++) if (values[i] !== 0) nnz++;
    const es = t.byteLength / t.size;
    const itype = o.indices === 'int64' ? 'int64' : values.length <= 128 ? 'int8' : values.length <= 32768 ? 'int16' : values.length <= 2 ** 31 ? 'int32' : 'int64';
    const denseBytes = t.byteLength;
    const sparseBytes = nnz * (es + { int64: 8, int32: 4, int16: 2, int8: 1 }[itype]);
    const sparse = o.mode === 'on' ? nnz < values.length : o.mode === 'auto' ? values.length >= o.minElements && sparseBytes < denseBytes : false;
    rows.push({ weight: v.name, elements: values.length, nonzero: nnz, denseBytes, sparseBytes, stored: sparse ? 'sparse' : 'dense' });
    if (!sparse) continue;
    const positions: number[] = [];
    const src = t.bytes();
    const kept = new Uint8Array(nnz * es);
    for (let i = 0; i < values.length; i++) {
      if (values[i] === 0) continue;
      kept.set(src.subarray(i * es, (i + 1) * es), positions.length * es);
      positions.push(i);
    }
    const indices = itype === 'int64' ? Tensor.from('int64', [nnz], BigInt64Array.from(positions, BigInt)) : Tensor.from(itype, [nnz], positions);
    const message = encodeSparseTensor(v.name, t.dims, Tensor.fromBytes(t.dtype, [nnz], kept), indices);
    // the value stays (its readers keep reading it); only where its data lives changes: the IR keeps sparse
    // initializers opaque, as { name, value, message }
    g.initializers.delete(v.name);
    v.initializer = undefined;
    g.sparseInitializers.push({ name: v.name, value: v, message });
  }
  if (o.indices === 'compact' && rows.some((r) => r.stored === 'sparse')) {
    notes.push("compact sparse indices are not standard ONNX: onnxruntime loads them, onnx's checker refuses them");
  }
  if (o.mode !== 'off') {
    notes.push(
      'sparse storage shrinks the file only: onnxruntime densifies sparse initializers when it loads the model, and its CPU kernels run no faster on unstructured or 2:4 zeros',
    );
  }
  const stored = modelSize(model);
  return { mode: o.mode, indices: o.indices, weights: rows, rawBytes: [dense.raw, stored.raw], gzipBytes: [dense.gzip, stored.gzip], notes };
}

/**
 * Turns the main graph's sparse initializers back into dense ones (in place), so passes that read weights see
 * them. Returns how many were converted.
 *
 * @example
 * ```ts
 * densifySparseInitializers(await loadModel('pruned-sparse.onnx'));
 * ```
 */
export function densifySparseInitializers(model: Model): number {
  const g = model.graph;
  let n = 0;
  for (const s of [...g.sparseInitializers]) {
    const { dims, values, indices } = decodeSparseTensor(s.message, `sparse initializer "${s.name}"`);
    const es = values.byteLength / Math.max(values.size, 1);
    const size = dims.reduce((a, b) => a * b, 1);
    const out = new Uint8Array(size * es);
    const src = values.bytes();
    const idx = indices.data() as ArrayLike<number | bigint>;
    const rank = indices.dims.length === 2 ? indices.dims[1]! : 1;
    for (let i = 0; i < values.size; i++) {
      let at = 0;
      if (rank === 1 && indices.dims.length === 1) at = Number(idx[i]);
      else for (let r = 0; r < rank; r++) at = at * dims[r]! + Number(idx[i * rank + r]);
      out.set(src.subarray(i * es, (i + 1) * es), at * es);
    }
    g.sparseInitializers.splice(g.sparseInitializers.indexOf(s), 1);
    s.value.initializer = Tensor.fromBytes(values.dtype, dims, out);
    g.initializers.set(s.value.name, s.value);
    n++;
  }
  return n;
}
