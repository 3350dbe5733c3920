/**
 * What a model costs to store and to run, independent of the machine: bytes on disk, gzip bytes, parameters,
 * zero share, bytes per element type, and multiply-adds per sample.
 *
 * Definitions (so numbers mean the same in every report):
 * - **bytes**: the model file plus its external-data files when a path is given; otherwise the size of the
 *   model encoded with all data inline (what `saveModel` writes for a model under ~1.8 GiB of weights).
 * - **gzipBytes**: each of those files compressed with gzip level 9 (node:zlib), summed: what a download costs,
 *   and what pruning buys before a sparse format is used.
 * - **parameters** and **bytesByDtype**: as `inspectModel` counts them (float weights in initializers and Constant
 *   nodes of every graph, plus integer weights that hold quantized values; scales count, zero points and shape
 *   tensors do not), plus **sparse initializers counted at their dense size**: a pruned weight stored as COO is
 *   still a weight of that shape, so parameters do not change when a pass switches storage, and its implicit zeros
 *   count as zeros. A sparse initializer's bytes are what it stores (values and indices, by their dtypes).
 * - **zeroShare**: exact zeros among the parameters. A quantized integer weight element counts as zero when it
 *   equals its zero point (it dequantizes to exactly 0): per-tensor or per-axis zero points of DequantizeLinear,
 *   QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger, QGemm and DynamicQuantizeMatMul. Blocked zero points
 *   (DequantizeLinear block_size) and packed 4-bit MatMulNBits weights are not inspected: their zeros are not
 *   counted (the share is then a lower bound).
 * - **macs**: multiply-adds of one sample (every symbolic dimension taken as 1, batch included) of Conv,
 *   ConvTranspose, Gemm, MatMul, their integer forms (QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger) and
 *   com.microsoft MatMulNBits, QGemm and DynamicQuantizeMatMul. A QDQ model has the MACs of its float model: its
 *   Conv/MatMul read weights through DequantizeLinear and are counted as Conv/MatMul. Bias additions, activations,
 *   pooling and normalization are not counted (they are a few percent of the work of the models onnxpress
 *   targets). Shapes come from the model's types, completed by `inferShapes` on a copy.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { constants, createGzip, gzip } from 'node:zlib';
import { LoadError } from '../errors.js';
import { elementCount } from '../onnx/dtype.js';
import { broadcastShapes, inferShapes } from '../onnx/infer/index.js';
import type { Dim, Graph, Model, Node, TensorType, Value } from '../onnx/ir.js';
import { inspectModel } from '../onnx/inspect.js';
import { decodeModelProto, decodeSparseTensor, encodeModel, modelFromProto, TensorProto_DataLocation, tensorSource, type TensorProto } from '../onnx/proto.js';
import type { Tensor } from '../onnx/tensor.js';
import type { SizeMetrics } from './schema.js';

const gzipAsync = promisify(gzip);
const GZIP_LEVEL = { level: constants.Z_BEST_COMPRESSION };

// ---------------------------------------------------------------------------------------------------------------
// Weights

function* graphsOf(graph: Graph): Generator<Graph> {
  yield graph;
  for (const n of graph.nodes) for (const s of n.subgraphs()) yield* graphsOf(s);
}

/** Initializers and Constant-node tensors of every graph, with the value they are read through. */
function* weightsOf(model: Model): Generator<{ tensor: Tensor; value: Value | null }> {
  for (const g of graphsOf(model.graph)) {
    for (const v of g.initializers.values()) if (v.initializer) yield { tensor: v.initializer, value: v };
    for (const n of g.nodes) {
      if (n.opType === 'Constant' && (n.domain === '' || n.domain === 'ai.onnx')) {
        const t = n.getTensor('value');
        if (t) yield { tensor: t, value: n.outputs[0] ?? null };
      }
    }
  }
}

/**
 * Ops whose integer weight input has a zero point: [weight input, zero-point input, the weight's per-channel
 * axis (for its rank)].
 */
const ZERO_POINTS: Record<string, (node: Node, rank: number) => [number, number, number]> = {
  DequantizeLinear: (n, rank) => [0, 2, normalizeAxis(n.getInt('axis', 1), rank)],
  QLinearConv: () => [3, 5, 0],
  ConvInteger: () => [1, 3, 0],
  QLinearMatMul: (_n, rank) => [3, 5, rank - 1],
  MatMulInteger: (_n, rank) => [1, 3, rank - 1],
  DynamicQuantizeMatMul: (_n, rank) => [1, 3, rank - 1],
  QGemm: (n) => [3, 5, n.getInt('transB', 0) ? 0 : 1],
};

function normalizeAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** The constant data of a value (initializer or Constant output), if any. */
function constantOf(v: Value | null | undefined): Tensor | undefined {
  if (!v) return undefined;
  if (v.initializer) return v.initializer;
  const p = v.producer;
  return p && p.opType === 'Constant' ? p.getTensor('value') : undefined;
}

/** Elements of a quantized integer weight equal to their zero point; undefined when it is not one or cannot be told. */
function quantizedZeros(tensor: Tensor, value: Value | null): number | undefined {
  if (!value || tensor.size === 0 || !/^u?int(8|16|32)$/.test(tensor.dtype)) return undefined;
  for (const { node, index } of value.uses) {
    const slots = ZERO_POINTS[node.opType]?.(node, tensor.dims.length);
    if (!slots || slots[0] !== index) continue;
    if (node.opType === 'DequantizeLinear' && node.getInt('block_size', 0) > 0) return undefined;
    const zpValue = node.inputs[slots[1]];
    const zp = zpValue ? constantOf(zpValue) : undefined;
    if (zpValue && !zp) return undefined; // a zero point computed at run time
    const zps = zp ? Array.from(zp.data() as ArrayLike<number>, Number) : [0];
    const data = tensor.data() as ArrayLike<number>;
    let zeros = 0;
    if (zps.length === 1) {
      for (let i = 0; i < data.length; i++) if (data[i] === zps[0]) zeros++;
      return zeros;
    }
    const axis = slots[2];
    if (axis < 0 || axis >= tensor.dims.length || tensor.dims[axis] !== zps.length) return undefined;
    const inner = elementCount(tensor.dims.slice(axis + 1));
    for (let i = 0; i < data.length; i++) if (data[i] === zps[Math.floor(i / inner) % zps.length]) zeros++;
    return zeros;
  }
  return undefined;
}

/** Parameters, zero share and bytes by dtype (see the module doc). */
function weightMetrics(model: Model): Pick<SizeMetrics, 'parameters' | 'zeroShare' | 'bytesByDtype'> {
  const summary = inspectModel(model);
  let parameters = summary.parameters;
  let zeros = summary.zeroWeights.zeros;
  const bytesByDtype: Record<string, number> = {};
  for (const row of summary.bytesByDtype) bytesByDtype[row.dtype] = row.bytes;
  for (const w of weightsOf(model)) zeros += quantizedZeros(w.tensor, w.value) ?? 0;
  for (const g of graphsOf(model.graph)) {
    for (const s of g.sparseInitializers) {
      const { dims, values, indices } = decodeSparseTensor(s.message, s.name);
      const dense = elementCount(dims);
      parameters += dense;
      const data = values.data() as ArrayLike<number | bigint>;
      let storedZeros = 0;
      for (let i = 0; i < data.length; i++) if (Number(data[i]) === 0) storedZeros++;
      zeros += dense - values.size + storedZeros;
      bytesByDtype[values.dtype] = (bytesByDtype[values.dtype] ?? 0) + values.byteLength;
      bytesByDtype[indices.dtype] = (bytesByDtype[indices.dtype] ?? 0) + indices.byteLength;
    }
  }
  return { parameters, zeroShare: parameters ? zeros / parameters : 0, bytesByDtype };
}

// ---------------------------------------------------------------------------------------------------------------
// Multiply-adds

/** A dim of one sample: symbolic dims (batch, sequence) count as 1; unknown is undefined. */
function dimOf(d: Dim): number | undefined {
  if (typeof d === 'number') return d;
  return typeof d === 'string' ? 1 : undefined;
}

function shapeOf(v: Value | null | undefined): number[] | undefined {
  // initializers carry their dims on the tensor, not always as a type
  const constant = constantOf(v);
  if (constant) return [...constant.dims];
  const s = v?.shape;
  if (!s) return undefined;
  const out: number[] = [];
  for (const d of s) {
    const n = dimOf(d);
    if (n === undefined) return undefined;
    out.push(n);
  }
  return out;
}

const product = (dims: readonly number[]) => dims.reduce((p, d) => p * d, 1);

/** Conv-like: each output element is a dot product over C/group × kernel, i.e. the weight's elements per output channel. */
function convMacs(node: Node, x: number, w: number, transposed: boolean): number | undefined {
  const ws = shapeOf(node.inputs[w]);
  if (!ws || ws.length < 2) return undefined;
  if (transposed) {
    // ConvTranspose weight [C, M/group, k…]: each input element is scattered into M/group × k… outputs
    const xs = shapeOf(node.inputs[x]);
    return xs ? product(xs) * product(ws.slice(1)) : undefined;
  }
  const ys = shapeOf(node.outputs[0]);
  return ys ? product(ys) * product(ws.slice(1)) : undefined;
}

/** MatMul-like: every output element is a dot product of length K (A's last dim, or K given). */
function matmulMacs(node: Node, a: number, b: number, k?: number, n?: number): number | undefined {
  const as = shapeOf(node.inputs[a]);
  const K = k ?? as?.at(-1);
  if (K === undefined) return undefined;
  const ys = shapeOf(node.outputs[0]);
  if (ys) return product(ys) * K;
  // no output shape (e.g. a com.microsoft op that inference does not know): A [..., M, K] × B [..., K, N]
  const bs = shapeOf(node.inputs[b]);
  const N = n ?? bs?.at(-1);
  if (!as || N === undefined) return undefined;
  const batchB = bs && bs.length > 2 && as.length <= 2 ? product(bs.slice(0, -2)) : 1;
  return product(as.slice(0, -1)) * batchB * N * K;
}

function gemmMacs(node: Node, a: number): number | undefined {
  const as = shapeOf(node.inputs[a]);
  const ys = shapeOf(node.outputs[0]);
  if (!as || as.length !== 2 || !ys) return undefined;
  return product(ys) * (node.getInt('transA', 0) ? as[0]! : as[1]!);
}

/** MACs of one node, or undefined when it is not a counted op; null when it is one but its shapes are unknown. */
function nodeMacs(node: Node): number | null | undefined {
  const onnx = node.domain === '' || node.domain === 'ai.onnx';
  const ms = node.domain === 'com.microsoft';
  let macs: number | undefined;
  if (onnx) {
    switch (node.opType) {
      case 'Conv':
      case 'ConvInteger':
        macs = convMacs(node, 0, 1, false);
        break;
      case 'QLinearConv':
        macs = convMacs(node, 0, 3, false);
        break;
      case 'ConvTranspose':
        macs = convMacs(node, 0, 1, true);
        break;
      case 'Gemm':
        macs = gemmMacs(node, 0);
        break;
      case 'MatMul':
      case 'MatMulInteger':
        macs = matmulMacs(node, 0, 1);
        break;
      case 'QLinearMatMul':
        macs = matmulMacs(node, 0, 3);
        break;
      default:
        return undefined;
    }
  } else if (ms) {
    switch (node.opType) {
      case 'MatMulNBits': {
        // B is packed [N, blocks, blob bytes]: the matrix it stands for is K × N, given as attributes
        const as = shapeOf(node.inputs[0]);
        const K = node.getInt('K', 0), N = node.getInt('N', 0);
        macs = as && K > 0 && N > 0 ? product(as.slice(0, -1)) * N * K : undefined;
        break;
      }
      case 'DynamicQuantizeMatMul':
        macs = matmulMacs(node, 0, 1);
        break;
      case 'QGemm':
        macs = gemmMacs(node, 0);
        break;
      default:
        return undefined;
    }
  } else {
    return undefined;
  }
  return macs ?? null;
}

/** What `countMacs` returns. */
export interface MacCount {
  /** Multiply-adds of one sample. */
  macs: number;
  /** The same by op type (only op types present). */
  macsByOp: Record<string, number>;
  /** Counted-op nodes left out because their shapes could not be inferred (named as the IR prints nodes). */
  unresolved: string[];
}

/** Copies a model (through its bytes, external data brought inline) so inference can write types into the copy. */
function encodeInline(model: Model): Uint8Array {
  return encodeModel(model, {
    placeTensor: (tensor, tp) => {
      if (tp.dataLocation !== TensorProto_DataLocation.EXTERNAL) return tp;
      const out = Object.assign(Object.create(Object.getPrototypeOf(tp)), tp) as TensorProto;
      delete (out as Partial<TensorProto>).dataLocation;
      out.externalData = [];
      out.rawData = tensor.bytes() as TensorProto['rawData'];
      return out;
    },
  });
}

/** Rank-preserving com.microsoft quantized ops whose output has the shape of input 0. */
const CONTRIB_SAME_SHAPE = new Set(['QLinearSigmoid', 'QLinearLeakyRelu', 'QLinearSoftmax', 'QLinearReduceMean']);

/**
 * Output shapes of the com.microsoft ops that quantizers emit and that `inferShapes` does not know (it leaves
 * other domains unknown), so that shapes flow past them to the ops after: MatMulNBits (A[…, K] → […, N]), QGemm,
 * DynamicQuantizeMatMul, QLinearAdd/QLinearMul (broadcast of inputs 0 and 3), QLinearGlobalAveragePool and
 * rank-preserving QLinear activations. Returns whether a type was set.
 * TODO(lead): these belong in src/onnx/infer as com.microsoft handlers; then this goes.
 */
function fillContribShapes(model: Model): boolean {
  let changed = false;
  for (const node of model.graph.allNodes()) {
    const y = node.outputs[0];
    if (node.domain !== 'com.microsoft' || !y || y.shape) continue;
    const a = node.inputs[0]?.shape;
    const elemType = node.inputs[0]?.elemType;
    if (!a || !elemType) continue;
    let shape: Dim[] | undefined;
    let type = elemType;
    switch (node.opType) {
      case 'MatMulNBits':
        shape = [...a.slice(0, -1), node.getInt('N', 0)];
        break;
      case 'DynamicQuantizeMatMul':
      case 'QGemm': {
        const b = node.inputs[node.opType === 'QGemm' ? 3 : 1]?.shape ?? constantOf(node.inputs[node.opType === 'QGemm' ? 3 : 1])?.dims;
        if (!b || b.length < 2) break;
        if (node.opType === 'QGemm') {
          shape = [node.getInt('transA', 0) ? a[1]! : a[0]!, node.getInt('transB', 0) ? b[0]! : b[1]!];
          if (!node.inputs[7]) type = 'float32'; // without y_scale QGemm returns float
        } else {
          shape = [...a.slice(0, -1), b.at(-1)!];
          type = 'float32';
        }
        break;
      }
      case 'QLinearAdd':
      case 'QLinearMul': {
        const b = node.inputs[3]?.shape ?? constantOf(node.inputs[3])?.dims;
        const r = b ? broadcastShapes([a, b]) : undefined;
        if (r && 'shape' in r) shape = r.shape;
        break;
      }
      case 'QLinearGlobalAveragePool':
        shape = node.getInt('channels_last', 0) ? [a[0]!, ...a.slice(1, -1).map(() => 1), a.at(-1)!] : [a[0]!, a[1]!, ...a.slice(2).map(() => 1)];
        break;
      default:
        if (CONTRIB_SAME_SHAPE.has(node.opType)) shape = [...a];
    }
    if (shape) {
      y.type = { kind: 'tensor', elemType: type, shape } satisfies TensorType;
      changed = true;
    }
  }
  return changed;
}

function macsOfCopy(copy: Model): MacCount {
  // batch 1: a symbolic or unknown first dim of every input becomes 1, so Reshape targets computed from it resolve
  for (const v of copy.graph.inputs) {
    const t = v.type;
    if (v.initializer || !t || t.kind !== 'tensor' || !t.shape || t.shape.length === 0 || typeof t.shape[0] === 'number') continue;
    v.type = { ...t, shape: [1, ...t.shape.slice(1)] };
  }
  // a sparse initializer's value has no tensor to read dims from: its type gives inference the dense shape
  for (const g of graphsOf(copy.graph)) {
    for (const sp of g.sparseInitializers) {
      if (sp.value.shape) continue;
      const { dims, values } = decodeSparseTensor(sp.message, sp.name);
      sp.value.type = { kind: 'tensor', elemType: values.dtype, shape: dims };
    }
  }
  // inference stops at com.microsoft ops; give those their shapes and infer again, until nothing changes
  for (let round = 0; round < 16; round++) {
    try {
      inferShapes(copy);
    } catch {
      // a contradiction in the model: count what the stated and inferred types allow, and name the rest as unresolved
      break;
    }
    if (!fillContribShapes(copy)) break;
  }
  const macsByOp: Record<string, number> = {};
  const unresolved: string[] = [];
  let macs = 0;
  for (const node of copy.graph.allNodes()) {
    const m = nodeMacs(node);
    if (m === undefined) continue;
    if (m === null) {
      unresolved.push(String(node));
      continue;
    }
    macs += m;
    macsByOp[node.opType] = (macsByOp[node.opType] ?? 0) + m;
  }
  return { macs, macsByOp, unresolved };
}

/**
 * Multiply-adds of one sample (batch 1) for the ops that dominate; see the module doc for what counts. The model
 * is not modified (shapes are inferred on a copy).
 *
 * @example
 * ```ts
 * const { macs, macsByOp, unresolved } = countMacs(await loadModel('fixtures/fmnist-cnn.onnx'));
 * // macsByOp: { Conv: …, Gemm: … }
 * ```
 */
export function countMacs(model: Model): MacCount {
  return macsOfCopy(modelFromProto(decodeModelProto(encodeInline(model))));
}

// ---------------------------------------------------------------------------------------------------------------
// Bytes

/** The external-data files a loaded model refers to, resolved against the model file's folder. */
function externalFiles(model: Model, modelPath: string): string[] {
  const files = new Set<string>();
  for (const { tensor } of weightsOf(model)) {
    const tp = tensorSource(tensor);
    if (tp?.dataLocation !== TensorProto_DataLocation.EXTERNAL) continue;
    const location = tp.externalData.find((e) => e.key === 'location')?.value;
    if (location) files.add(join(dirname(modelPath), location));
  }
  return [...files];
}

/** Size of a file and of its gzip (level 9), streamed so that large data files do not sit in memory. */
async function fileSizes(path: string): Promise<{ bytes: number; gzipBytes: number }> {
  let bytes: number;
  try {
    bytes = (await stat(path)).size;
  } catch (e) {
    throw new LoadError(`${path}: cannot measure its size (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  let gzipBytes = 0;
  await pipeline(
    createReadStream(path),
    createGzip(GZIP_LEVEL),
    new Writable({
      write(chunk: Buffer, _enc, done) {
        gzipBytes += chunk.byteLength;
        done();
      },
    }),
  );
  return { bytes, gzipBytes };
}

/**
 * Measures a model's size (see the module doc for the definitions). Give `path`, the file the model was loaded
 * from or saved to, for the bytes on disk (external-data files included); without it the model is encoded.
 *
 * @example
 * ```ts
 * const model = await loadModel('fixtures/fmnist-cnn.onnx');
 * const size = await measureSize(model, { path: 'fixtures/fmnist-cnn.onnx' });
 * size.bytes; size.gzipBytes; size.parameters; size.macs; // 427107, …, 106058, …
 * ```
 */
export async function measureSize(model: Model, options: { path?: string } = {}): Promise<SizeMetrics> {
  let bytes = 0, gzipBytes = 0;
  let copy: Model;
  if (options.path !== undefined) {
    for (const file of [options.path, ...externalFiles(model, options.path)]) {
      const s = await fileSizes(file);
      bytes += s.bytes;
      gzipBytes += s.gzipBytes;
    }
    copy = modelFromProto(decodeModelProto(encodeInline(model)));
  } else {
    const encoded = encodeInline(model);
    bytes = encoded.byteLength;
    gzipBytes = (await gzipAsync(encoded, GZIP_LEVEL)).byteLength;
    copy = modelFromProto(decodeModelProto(encoded));
  }
  const { macs, macsByOp } = macsOfCopy(copy);
  return { bytes, gzipBytes, ...weightMetrics(model), macs, macsByOp };
}
