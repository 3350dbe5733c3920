/**
 * What the pruning passes share: which weights are prunable (constant float weights of Conv, ConvTranspose, Gemm
 * and MatMul, each counted once however many nodes read it), how a weight's elements map to input channels (the
 * `[outer, K, inner]` view), exclusions (`exclude`, `excludeFirstLast`), exact "k smallest" selection with ties
 * broken by index, float read/write for every float dtype, and copying a model (the passes return new models).
 */
import { z } from 'zod';
import { OptionsError, oneOf } from '../errors.js';
import { toFloat32 } from '../onnx/codecs.js';
import { loadDataset, type Dataset } from '../eval/datasets.js';
import { byteLength, type DType, type TypedArray } from '../onnx/dtype.js';
import { addConstant, adoptName, constantOf, dropUnreadConstants, isConstantInitializer, isOnnxDomain } from '../onnx/hygiene/constants.js';
import type { Graph, Model, Node, Value } from '../onnx/ir.js';
import { decodeModelProto, encodeModel, modelFromProto } from '../onnx/proto.js';
import { Tensor } from '../onnx/tensor.js';

/** The ops whose weights the pruning passes edit. */
export const PRUNABLE_OPS = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'] as const;
export type PrunableOp = (typeof PRUNABLE_OPS)[number];

/** Weight dtypes the passes read and write (the 16-bit ones through codecs; zero is exact in all of them). */
export const PRUNABLE_DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16'];

/** A copy of a model (the pruning passes return new models: `inPlace` is false). */
export function copyModel(model: Model): Model {
  return modelFromProto(decodeModelProto(encodeModel(model)));
}

/**
 * How a weight's elements map to input channels, seen as `[outer, K, inner]` row-major: element
 * `(o, k, i)` is at `(o * K + k) * inner + i` and multiplies input channel (feature) `k` — or, for a grouped Conv,
 * channel `group(o) * K + k` where `group(o) = floor(o / outPerGroup)`.
 *
 * | op | weight | outer | K | inner |
 * |---|---|---|---|---|
 * | Conv | [O, I/g, k…] | O | I/g | ∏k |
 * | ConvTranspose | [I, O/g, k…] | 1 | I | O/g · ∏k |
 * | Gemm, transB = 1 | [N, K] | N | K | 1 |
 * | Gemm, transB = 0 | [K, N] | 1 | K | N |
 * | MatMul | [K, N] | 1 | K | N |
 */
export interface KView {
  outer: number;
  k: number;
  inner: number;
  /** Conv only: groups and output channels per group (for the channel of element (o, k, i)). */
  groups: number;
  outPerGroup: number;
}

/** One prunable weight: an initializer and the nodes that read it as their weight. */
export interface PrunableWeight {
  value: Value;
  /** Readers, in graph order (more than one when the weight is shared). */
  nodes: Node[];
  opType: PrunableOp;
  view: KView;
  /** Which axis of the node's first input holds the channels that K indexes (for activation scoring). */
  inputAxis: number;
}

/** The weight input of a prunable node: B of Gemm, the constant side of MatMul (input 1), W of Conv/ConvTranspose. */
function weightValue(n: Node): Value | undefined {
  const v = n.inputs[1];
  return v ?? undefined;
}

/** The K view of `node`'s weight with `dims`, or a reason it has none. */
export function kViewOf(node: Node, dims: readonly number[]): KView | string {
  const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);
  switch (node.opType) {
    case 'Conv': {
      if (dims.length < 3) return `its weight has rank ${dims.length}`;
      const g = node.getInt('group', 1);
      if (dims[0]! % g !== 0) return `its ${dims[0]} output channels do not split into ${g} groups`;
      return { outer: dims[0]!, k: dims[1]!, inner: prod(dims.slice(2)), groups: g, outPerGroup: dims[0]! / g };
    }
    case 'ConvTranspose':
      if (dims.length < 3) return `its weight has rank ${dims.length}`;
      return { outer: 1, k: dims[0]!, inner: prod(dims.slice(1)), groups: 1, outPerGroup: 1 };
    case 'Gemm':
      if (dims.length !== 2) return `its B has rank ${dims.length}`;
      return node.getInt('transB', 0) ? { outer: dims[0]!, k: dims[1]!, inner: 1, groups: 1, outPerGroup: dims[0]! } : { outer: 1, k: dims[0]!, inner: dims[1]!, groups: 1, outPerGroup: 1 };
    case 'MatMul':
      if (dims.length !== 2) return `its weight has rank ${dims.length} (only 2-D MatMul weights are pruned)`;
      return { outer: 1, k: dims[0]!, inner: dims[1]!, groups: 1, outPerGroup: 1 };
    default:
      return `${node.opType} is not one of ${PRUNABLE_OPS.join(', ')}`;
  }
}

/** Which axis of a node's input 0 K indexes: channels (axis 1) for convolutions, the inner dim for Gemm/MatMul. */
function inputAxisOf(node: Node): number {
  if (node.opType === 'Conv' || node.opType === 'ConvTranspose') return 1;
  if (node.opType === 'Gemm') return node.getInt('transA', 0) ? 0 : 1;
  const r = node.inputs[0]?.shape?.length;
  return r === undefined ? -1 : r - 1;
}

/**
 * Finds the prunable weights of the main graph: constant float initializers read as the weight of a Conv,
 * ConvTranspose, Gemm or MatMul. A weight read by several such nodes is listed once (and pruned once); a weight
 * also read by anything else, or read by an excluded node, is left with a note.
 */
export function findPrunableWeights(model: Model, options: { exclude: Set<Node>; opTypes?: readonly string[] }, notes: string[]): PrunableWeight[] {
  const g = model.graph;
  const ops = new Set<string>(options.opTypes ?? PRUNABLE_OPS);
  const byValue = new Map<Value, PrunableWeight>();
  const rejected = new Set<Value>();
  const out: PrunableWeight[] = [];
  for (const n of g.nodes) {
    if (!isOnnxDomain(n) || !ops.has(n.opType)) continue;
    const w = weightValue(n);
    if (!w || rejected.has(w)) continue;
    const t = w.initializer;
    if (!t || !isConstantInitializer(w) || w.graph !== g) continue;
    const leave = (why: string) => {
      rejected.add(w);
      const had = byValue.get(w);
      if (had) out.splice(out.indexOf(had), 1);
      byValue.delete(w);
      notes.push(`left weight "${w.name}" of ${n} dense: ${why}`);
    };
    if (!PRUNABLE_DTYPES.includes(t.dtype)) {
      leave(`its dtype ${t.dtype} is not one of ${PRUNABLE_DTYPES.join(', ')}`);
      continue;
    }
    const others = w.uses.filter((u) => u.index !== 1 || !ops.has(u.node.opType) || !isOnnxDomain(u.node));
    if (others.length) {
      leave(`it is also read by ${others.map((u) => u.node.toString()).join(', ')}`);
      continue;
    }
    if (options.exclude.has(n)) {
      if (byValue.has(w) || w.uses.some((u) => !options.exclude.has(u.node))) leave(`it is shared with ${n}, which is excluded`);
      else rejected.add(w);
      continue;
    }
    const view = kViewOf(n, t.dims);
    if (typeof view === 'string') {
      leave(view);
      continue;
    }
    const had = byValue.get(w);
    if (had) {
      if (had.opType !== n.opType || had.view.k !== view.k || had.view.outer !== view.outer) leave(`it is read as different layouts by ${had.nodes[0]} and ${n}`);
      else had.nodes.push(n);
      continue;
    }
    const pw: PrunableWeight = { value: w, nodes: [n], opType: n.opType as PrunableOp, view, inputAxis: inputAxisOf(n) };
    byValue.set(w, pw);
    out.push(pw);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Exclusions

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/**
 * Resolves `exclude` entries (node names, op types, or glob patterns over node names) to nodes of the main graph;
 * an entry that matches nothing is an OptionsError that lists what exists.
 */
export function resolveExclude(model: Model, exclude: readonly string[]): Set<Node> {
  const nodes = model.graph.nodes;
  const out = new Set<Node>();
  for (const entry of exclude) {
    let hit = false;
    const re = /[*?]/.test(entry) ? globToRegExp(entry) : undefined;
    for (const n of nodes) {
      if (n.name === entry || n.opType === entry || (re && re.test(n.name))) {
        out.add(n);
        hit = true;
      }
    }
    if (!hit) {
      const ops = [...new Set(nodes.map((n) => n.opType))];
      throw new OptionsError(`exclude: "${entry}" matches no node name, op type or pattern (op types: ${oneOf(ops)}; nodes: ${oneOf(nodes.map((n) => n.name).filter(Boolean))})`);
    }
  }
  return out;
}

/** The first and last nodes (graph order) among `candidates`: the usual "keep dense" pair. */
export function firstAndLast(model: Model, candidates: (n: Node) => boolean): Node[] {
  const list = model.graph.nodes.filter(candidates);
  return list.length ? [...new Set([list[0]!, list[list.length - 1]!])] : [];
}

/** Checks names in a per-layer map (`layerSparsity`, `remove`) against the graph's nodes. */
export function checkNodeNames(model: Model, names: Iterable<string>, what: string): void {
  const have = new Set(model.graph.nodes.map((n) => n.name));
  for (const name of names) {
    if (!have.has(name)) throw new OptionsError(`${what}: no node named "${name}" ${oneOf(model.graph.nodes.map((n) => n.name).filter(Boolean))}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Selection

/**
 * Marks exactly `k` entries of `scores` with the smallest scores; equal scores are taken in index order (lowest
 * index first), so the result is deterministic. NaN scores rank last.
 *
 * @example
 * ```ts
 * smallestK(Float32Array.of(3, 1, 1, 2), 2); // Uint8Array [0, 1, 1, 0]
 * ```
 */
export function smallestK(scores: ArrayLike<number>, k: number): Uint8Array {
  const n = scores.length;
  const mask = new Uint8Array(n);
  if (k <= 0) return mask;
  if (k >= n) return mask.fill(1);
  const key = (x: number) => (x === x ? x : Infinity);
  const sorted = Float64Array.from(scores, key).sort();
  const t = sorted[k - 1]!;
  let below = 0;
  for (let i = 0; i < n; i++) if (key(scores[i]!) < t) below++;
  let ties = k - below;
  for (let i = 0; i < n; i++) {
    const s = key(scores[i]!);
    if (s < t) mask[i] = 1;
    else if (s === t && ties > 0) {
      mask[i] = 1;
      ties--;
    }
  }
  return mask;
}

/**
 * Splits `total` items over groups of `sizes` in proportion (largest remainder, ties to the lower index), so the
 * parts are exact integers summing to `total`, each within 1 of its proportional share and never above its size.
 */
export function apportion(sizes: readonly number[], fraction: number, total: number): number[] {
  const base = sizes.map((n) => Math.min(n, Math.floor(n * fraction)));
  let left = total - base.reduce((a, b) => a + b, 0);
  const order = sizes.map((n, i) => ({ i, r: n * fraction - Math.floor(n * fraction) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    if (base[i]! < sizes[i]!) {
      base[i]!++;
      left--;
    }
  }
  return base;
}

// ---------------------------------------------------------------------------------------------------------------
// Float data

/** A float tensor's elements as float32 (a copy). */
export function readFloat32(t: Tensor): Float32Array {
  const d = t.data();
  if (t.dtype === 'float32') return Float32Array.from(d as Float32Array);
  if (t.dtype === 'float64') return Float32Array.from(d as Float64Array);
  return toFloat32(d, t.dtype, t.size);
}

/** A copy of `t` with the elements marked in `zero` set to 0, in its own dtype (other elements bit-exact). */
export function zeroElements(t: Tensor, zero: Uint8Array): Tensor {
  const src = t.data();
  const copy = (src as Float32Array).slice() as TypedArray;
  // +0 is all-zero bits in float32, float64, float16 and bfloat16 alike
  for (let i = 0; i < zero.length; i++) if (zero[i]) (copy as Float32Array)[i] = 0;
  return Tensor.from(t.dtype, t.dims, copy);
}

/** How many elements of a float tensor are exactly zero. */
export function countZeros(t: Tensor): number {
  const d = readFloat32(t);
  let z = 0;
  for (let i = 0; i < d.length; i++) if (d[i] === 0) z++;
  return z;
}

/**
 * A copy of `t` keeping only the entries `kept` (ascending or not, each once) along `axis`. Works on the raw
 * bytes, so any dtype of at least 8 bits is kept bit-exact.
 */
export function sliceAxis(t: Tensor, axis: number, kept: readonly number[]): Tensor {
  const dims = t.dims;
  const es = byteLength(t.dtype, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const n = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1) * es;
  const src = t.bytes();
  const out = new Uint8Array(outer * kept.length * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < kept.length; j++) {
      const from = (o * n + kept[j]!) * inner;
      out.set(src.subarray(from, from + inner), (o * kept.length + j) * inner);
    }
  }
  const newDims = [...dims];
  newDims[axis] = kept.length;
  return Tensor.fromBytes(t.dtype, newDims, out);
}

/**
 * Points input `index` of `node` at a new initializer holding `t`. The old constant is dropped when nothing else
 * reads it, and then the new one takes its name (weight names stay stable); a constant shared with other nodes
 * stays as it is for them.
 */
export function setConstantInput(node: Node, index: number, t: Tensor): void {
  const old = node.inputs[index] ?? null;
  const v = addConstant(node.graph, old ? `${old.name}_pruned` : `${node.name || node.opType}_input${index}`, t);
  node.setInput(index, v);
  if (old && dropUnreadConstants([old])) adoptName(v, old.name);
}

/** The constant tensor input `index` of a node reads, if any. */
export function constantInput(node: Node, index: number): Tensor | undefined {
  return constantOf(node.inputs[index]);
}

/** One row of a pruning report: a layer (a weight, or a node whose channels changed), before and after. */
export interface PruneLayerRow {
  /** The node(s) that read the weight (several when it is shared), or the node whose channels changed. */
  node: string;
  opType: string;
  /** The weight initializer's name. */
  weight?: string;
  /** Weight elements (magnitude, n:m: the weight; channels: weight and bias), before and after. */
  params: [number, number];
  /** Non-zero weight elements, before and after (magnitude, n:m). */
  nonzero?: [number, number];
  /** Input and output channels (features) of the node, before and after (channels). */
  channelsIn?: [number, number];
  channelsOut?: [number, number];
  /** Why the layer was left as it was, or anything else worth knowing. */
  note?: string;
}

/** What a pruning pass reports: per-layer rows and totals. Plain data, safe to JSON.stringify. */
export interface PruneReport {
  method: 'magnitude' | 'n:m' | 'channels';
  layers: PruneLayerRow[];
  totals: {
    /** Elements of the prunable weights (magnitude, n:m). */
    prunableParams: number;
    /** Zero elements among the prunable weights, before and after (magnitude, n:m). */
    zeros: [number, number];
    /** zeros after / prunableParams (magnitude, n:m); removed / prunable channels (channels). */
    sparsity: number;
    /** Elements of every initializer in the model, before and after. */
    modelParams: [number, number];
    /** Output channels of the prunable channel groups, before and after (channels). */
    channels?: [number, number];
  };
}

/** Number of elements held by the initializers (dense and sparse) of a graph and its subgraphs. */
export function countParams(model: Model): number {
  let n = 0;
  const visit = (g: Graph) => {
    for (const v of g.initializers.values()) if (v.initializer) n += v.initializer.size;
    for (const s of g.sparseInitializers) {
      const dims = (s.message as { dims?: bigint[] }).dims ?? [];
      n += dims.reduce((a, b) => a * Number(b), 1);
    }
    for (const node of g.nodes) for (const sub of node.subgraphs()) visit(sub);
  };
  visit(model.graph);
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// Options shared by the passes

function isDataset(v: unknown): v is Dataset {
  return typeof v === 'object' && v !== null && typeof (v as Dataset).batches === 'function' && typeof (v as Dataset).size === 'number';
}

/** Where samples come from: a dataset descriptor (JSON) path, or a Dataset. */
export type DataSource = string | Dataset;

/**
 * A data option. `z.any()` underneath so that the schema stays representable as JSON Schema for docs and config
 * editors; the check does what `z.custom` would.
 */
export function dataOption(what: string): z.ZodType<DataSource> {
  return z
    .any()
    .superRefine((v, ctx) => {
      if ((typeof v === 'string' && v.length > 0) || isDataset(v)) return;
      ctx.addIssue({ code: 'custom', message: `Expected a dataset descriptor path or a Dataset for ${what} but received ${v === null ? 'null' : typeof v}` });
    })
    .describe(`${what}: a dataset descriptor (JSON) path, or a Dataset`) as unknown as z.ZodType<DataSource>;
}

/** Opens a data option: loads a descriptor path (input names from the model), or returns the Dataset given. */
export async function openData(source: DataSource, model: Model): Promise<Dataset> {
  if (typeof source !== 'string') return source;
  const init = new Set(model.graph.initializers.keys());
  return loadDataset(source, { inputNames: model.graph.inputs.filter((v) => !init.has(v.name)).map((v) => v.name) });
}

export const excludeOption = z.array(z.string().min(1)).default([]).describe('Node names, op types or glob patterns (*, ?) of nodes to leave as they are');
export const excludeFirstLastOption = z.boolean().default(false).describe('Leave the first and the last prunable layer as they are');
export const layerSparsityOption = z
  .record(z.string(), z.number().min(0).max(1))
  .optional()
  .describe('Per-layer sparsity by node name (what the sensitivity plan produces); layers not named take `sparsity`');
