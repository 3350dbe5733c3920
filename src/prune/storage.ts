/**
 * Sparse storage of pruned weights: the file carries only the non-zero values and where they go. Three forms:
 *
 * | `indices` | form | bytes per element at 80% sparsity (float32) | standard ONNX |
 * |---|---|---|---|
 * | `bitmask` (`auto` from opset 11) | non-zero values + 1 bit per element, rebuilt by standard ops | 0.2·4 + 1/8 = 0.93 (0.23×) | yes, passes the full check |
 * | `int64` (`auto` below opset 11) | `sparse_initializer`, COO, int64 linearized indices [NNZ] | 0.2·(4 + 8) = 2.4 (0.6×) | yes, but see below |
 * | `compact` | `sparse_initializer` with int8/int16/int32 indices | 0.2·(4 + 2 or 4) = 1.2–1.6 (0.3–0.4×) | no |
 *
 * Why the bitmask: ONNX requires int64 indices for a SparseTensorProto (the spec, and onnx's checker: "Sparse tensor
 * indices must have INT64 type"), in the [NNZ] linearized or [NNZ, rank] form, ascending — no deltas, no small
 * types. With 12 bytes per non-zero float32 a standard sparse_initializer pays only below 1/3 density, and a model
 * pruned to 80% cannot get under 0.6× the prunable bytes (measured on the Fashion-MNIST fixtures: 0.49–0.58× the
 * whole file). And onnx's strict type inference (`full_check`) types a sparse initializer as `sparse_tensor`, which
 * Conv and Gemm do not take. The bitmask form keeps the weight an ordinary computed tensor: `toBitmask` below lists
 * its ops; onnxruntime folds them once while loading (so latency is unchanged, checked by bench/prune), and other
 * runtimes that fold constants do too. Measured at 80%: 0.24–0.38× the file raw, 0.22–0.28× gzipped.
 *
 * onnxruntime-node 1.30 also loads sparse initializers, int64 and compact, for any op (checked by the tests): it
 * turns each into a dense tensor while loading. Whatever the form, storage makes the *file* smaller, not the model
 * in memory, and not faster: onnxruntime's CPU kernels have no sparse Conv or Gemm, and neither unstructured nor 2:4
 * zeros make them run faster. Only structured (channel) pruning cuts latency on CPU.
 *
 * Modes: `auto` stores a weight in the chosen form when that is smaller than dense; `on` stores every prunable
 * weight with at least one zero that way (even when larger); `off` keeps everything dense.
 *
 * gzip is the other way to ship zeros: a dense pruned model gzips about as small as the bitmask form, and it needs
 * nothing from the runtime.
 */
import { gzipSync } from 'node:zlib';
import { z } from 'zod';
import { constantOf, isConstantInitializer } from '../onnx/hygiene/constants.js';
import { OptionsError } from '../errors.js';
import { attr, type Model, type Node, type Value } from '../onnx/ir.js';
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
    .enum(['auto', 'int64', 'bitmask', 'compact'])
    .default('auto')
    .describe(
      "How the non-zeros' positions are stored: 'auto' (the smaller standard form per weight), 'int64' (sparse_initializer), 'bitmask' (1 bit per element, expanded by standard ops), 'compact' (sparse_initializer with small integer indices: onnxruntime reads it, onnx's checker does not)",
    ),
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
  /** 'sparse': a sparse_initializer; 'bitmask': values + a bitmask expanded by standard ops at load. */
  stored: 'sparse' | 'bitmask' | 'dense';
}

/** What `toSparseStorage` did, with the model's size before and after. */
export interface StorageReport {
  mode: 'auto' | 'on' | 'off';
  indices: 'auto' | 'int64' | 'bitmask' | 'compact';
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
  // BitShift and ScatterND need opset 11
  const bitmaskOk = (model.opset() ?? 0) >= 11;
  if (o.indices === 'bitmask' && !bitmaskOk) throw new OptionsError(`indices 'bitmask' needs opset 11 or later; the model has opset ${model.opset() ?? 'none'}`);
  let shared: SharedConstants | undefined;
  for (const v of candidates(model)) {
    const t = v.initializer!;
    const values = readFloat32(t);
    let nnz = 0;
    for (let i = 0; i < values.length; i++) if (values[i] !== 0) nnz++;
    const es = t.byteLength / t.size;
    const denseBytes = t.byteLength;
    const cooType = o.indices === 'compact' ? (values.length <= 128 ? 'int8' : values.length <= 32768 ? 'int16' : values.length <= 2 ** 31 ? 'int32' : 'int64') : 'int64';
    const cooBytes = nnz * (es + { int64: 8, int32: 4, int16: 2, int8: 1 }[cooType]);
    // values, the bits, and about 200 bytes of nodes and small constants
    const bitmaskBytes = bitmaskOk && nnz > 0 ? nnz * es + Math.ceil(values.length / 8) + BITMASK_OVERHEAD : Infinity;
    // auto: the bitmask wherever the opset allows (it passes onnx's full check, which types a sparse_initializer as
    // sparse_tensor and refuses it as a Conv/Gemm weight), else sparse_initializer
    const form: 'sparse' | 'bitmask' = o.indices === 'bitmask' || (o.indices === 'auto' && bitmaskBytes < Infinity) ? 'bitmask' : 'sparse';
    const sparseBytes = form === 'bitmask' ? bitmaskBytes : cooBytes;
    const store = o.mode === 'on' ? nnz < values.length : o.mode === 'auto' ? values.length >= o.minElements && sparseBytes < denseBytes : false;
    rows.push({ weight: v.name, elements: values.length, nonzero: nnz, denseBytes, sparseBytes, stored: store ? form : 'dense' });
    if (!store) continue;
    if (form === 'bitmask') {
      toBitmask(model, v, values, shared ??= sharedConstants(model));
      continue;
    }
    const positions: number[] = [];
    const src = t.bytes();
    const kept = new Uint8Array(nnz * es);
    for (let i = 0; i < values.length; i++) {
      if (values[i] === 0) continue;
      kept.set(src.subarray(i * es, (i + 1) * es), positions.length * es);
      positions.push(i);
    }
    const indices = cooType === 'int64' ? Tensor.from('int64', [nnz], BigInt64Array.from(positions, BigInt)) : Tensor.from(cooType, [nnz], positions);
    const message = encodeSparseTensor(v.name, t.dims, Tensor.fromBytes(t.dtype, [nnz], kept), indices);
    // the value stays (its readers keep reading it); only where its data lives changes: the IR keeps sparse
    // initializers opaque, as { name, value, message }
    g.initializers.delete(v.name);
    v.initializer = undefined;
    g.sparseInitializers.push({ name: v.name, value: v, message });
  }
  if (shared) g.sort();
  if (o.indices === 'compact' && rows.some((r) => r.stored === 'sparse')) {
    notes.push("compact sparse indices are not standard ONNX: onnxruntime loads them, onnx's checker refuses them");
  }
  if (o.mode !== 'off') {
    notes.push(
      'sparse storage shrinks the file only: onnxruntime rebuilds the dense weights when it loads the model, and its CPU kernels run no faster on unstructured or 2:4 zeros',
    );
  }
  const stored = modelSize(model);
  return { mode: o.mode, indices: o.indices, weights: rows, rawBytes: [dense.raw, stored.raw], gzipBytes: [dense.gzip, stored.gzip], notes };
}

// ---------------------------------------------------------------------------------------------------------------
// Bitmask form

/** Bytes of a bitmask weight's nodes and small constants beyond its values and bits (measured: 515–530 with the shared constants). */
const BITMASK_OVERHEAD = 520;
/** The docString that marks the last node of a bitmask expansion; JSON with the parts follows it. */
const BITMASK_MARK = 'onnxpress.bitmask';

interface SharedConstants {
  flat: Value;
  shifts: Value;
  seven: Value;
  zero: Value;
}

/** Constants every bitmask expansion reads (made once per model). */
function sharedConstants(model: Model): SharedConstants {
  const g = model.graph;
  const c = (name: string, t: Tensor) => g.addInitializer(g.uniqueName(`onnxpress_bitmask.${name}`), t);
  return {
    flat: c('flat', Tensor.from('int64', [1], BigInt64Array.from([-1n]))),
    shifts: c('shifts', Tensor.from('uint8', [1, 8], [0, 1, 2, 3, 4, 5, 6, 7])),
    seven: c('seven', Tensor.from('uint8', [1], [7])),
    zero: c('zero', Tensor.from('int64', [1], BigInt64Array.from([0n]))),
  };
}

/**
 * Replaces weight `v` (in place) by its non-zero values, a bitmask of where they go (bit j of byte i, most
 * significant first, is element 8i + j), and standard ops that rebuild it; its readers read the rebuilt value,
 * which keeps the weight's name. onnxruntime folds the constant expansion once when it loads the model.
 *
 *   bits [B, 1] uint8 → BitShift left by 0..7 → BitShift right by 7 → Reshape [8B] → Slice [:N] (if N % 8) = m
 *   Gather([0, values…], CumSum(Cast(m, int64)) · m) → Reshape to the weight's dims
 *
 * (rank of each set bit among the set bits, 0 for an unset one, which reads the leading zero).
 *
 * Every shape is static, so onnxruntime's constant folding computes the weight once at load and its Conv layout
 * transforms still apply (measured: the same latency as dense). NonZero + ScatterND, the obvious form, is not
 * folded (NonZero's output shape depends on data) and made ResNet-8 1.7× slower.
 */
function toBitmask(model: Model, v: Value, values: Float32Array, k: SharedConstants): void {
  const g = model.graph;
  const t = v.initializer!;
  const es = t.byteLength / t.size;
  const N = values.length;
  const bits = new Uint8Array(Math.ceil(N / 8));
  let nnz = 0;
  for (let i = 0; i < N; i++) if (values[i] !== 0) nnz++;
  // the values with a zero in front: position 0 is where every unset bit points
  const kept = new Uint8Array((nnz + 1) * es);
  const src = t.bytes();
  for (let i = 0, j = 1; i < N; i++) {
    if (values[i] === 0) continue;
    bits[i >> 3]! |= 0x80 >> (i & 7);
    kept.set(src.subarray(i * es, (i + 1) * es), j++ * es);
  }
  const vals = g.addInitializer(g.uniqueName('bm'), Tensor.fromBytes(t.dtype, [nnz + 1], kept));
  const mask = g.addInitializer(g.uniqueName('bm'), Tensor.fromBytes('uint8', [bits.length, 1], bits));
  const int64 = (xs: readonly number[]) => g.addInitializer(g.uniqueName('bm'), Tensor.from('int64', [xs.length], BigInt64Array.from(xs, (d) => BigInt(d))));
  const first = v.uses[0]!.node;
  const nodes: Node[] = [];
  // short generated names: names repeat in every node, and long ones would eat the gain on small weights
  const op = (opType: string, inputs: Value[], attributes: Record<string, ReturnType<typeof attr.int>> = {}) => {
    const n = g.addNode({ opType, name: g.uniqueNodeName('bm'), inputs, outputs: [g.uniqueName('bm')], attributes, before: first });
    nodes.push(n);
    return n.outputs[0]!;
  };
  const left = op('BitShift', [mask, k.shifts], { direction: attr.string('LEFT') });
  let m = op('Reshape', [op('BitShift', [left, k.seven], { direction: attr.string('RIGHT') }), k.flat]);
  if (N % 8) m = op('Slice', [m, k.zero, int64([N])]);
  const m64 = op('Cast', [m], { to: attr.int(7) }); // INT64
  // element i: its rank among the set bits (1-based) where its bit is set, else 0 → the leading zero value
  const at = op('Mul', [op('CumSum', [m64, k.zero]), m64]);
  const out = op('Reshape', [op('Gather', [vals, at]), int64(t.dims)]);
  nodes.at(-1)!.docString = BITMASK_MARK;
  const name = v.name;
  v.replaceAllUsesWith(out);
  g.removeInitializer(v);
  out.name = name;
}

/** Undoes `toBitmask` for every marked expansion: the weight becomes a dense initializer again. Returns how many. */
function densifyBitmasks(model: Model): number {
  const g = model.graph;
  let n = 0;
  for (const last of g.nodes.filter((x) => x.docString === BITMASK_MARK && x.opType === 'Reshape')) {
    // the expansion: every node upstream of the mark (it reads initializers only); see toBitmask for its shape
    const nodes = new Set<Node>();
    const stack = [last];
    while (stack.length) {
      const x = stack.pop()!;
      if (nodes.has(x)) continue;
      nodes.add(x);
      for (const i of x.inputs) if (i?.producer) stack.push(i.producer);
    }
    const gather = last.inputs[0]?.producer;
    const first = [...nodes].find((x) => x.opType === 'BitShift' && x.inputs[0]?.initializer?.dtype === 'uint8');
    const vals = gather?.opType === 'Gather' ? gather.inputs[0]?.initializer : undefined;
    const bits = first?.inputs[0]!.initializer!.bytes();
    const dimsT = constantOf(last.inputs[1] ?? null);
    if (!vals || !bits || !dimsT) continue;
    const shape = Array.from(dimsT.data() as BigInt64Array, Number);
    const N = shape.reduce((x, y) => x * y, 1);
    const es = vals.byteLength / Math.max(vals.size, 1);
    const dense = new Uint8Array(N * es);
    const src = vals.bytes();
    for (let i = 0, j = 1; i < N; i++) if (bits[i >> 3]! & (0x80 >> (i & 7))) dense.set(src.subarray(j * es, ++j * es), i * es);
    const out = last.outputs[0]!;
    const weight = out.name;
    const w = g.addInitializer(g.uniqueName(`${weight}_dense`), Tensor.fromBytes(vals.dtype, shape, dense));
    out.replaceAllUsesWith(w);
    const inputs = new Set<Value>();
    for (const node of g.nodes.filter((x) => nodes.has(x)).reverse()) {
      for (const i of node.inputs) if (i?.initializer) inputs.add(i);
      g.removeNode(node);
    }
    for (const i of inputs) if (!i.uses.length) g.removeInitializer(i);
    w.name = weight;
    n++;
  }
  return n;
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
  let n = densifyBitmasks(model);
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
