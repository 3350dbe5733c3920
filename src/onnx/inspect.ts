/**
 * What a model is made of: a summary for reports and the CLI's `inspect` (inputs, outputs, op histogram,
 * parameters, bytes per element type, zero share, how much of it is quantized), and a plain-text formatter.
 *
 * Definitions, so numbers mean the same in every report:
 * - **weights**: initializers of every graph (main graph and subgraphs) and the `value` tensors of Constant nodes.
 * - **parameters**: elements of floating-point weights, plus integer weights that hold quantized values
 *   (input 0 of DequantizeLinear; the weight and bias inputs of integer ops such as QLinearConv or MatMulInteger;
 *   MatMulNBits weights count as N×K). Integer tensors used as shapes, indices or zero points are not parameters.
 *   BatchNormalization running statistics are parameters here (they are float initializers) and are also counted
 *   on their own, so `parameters - batchNormStats` is what PyTorch calls trainable parameters for a plain CNN.
 * - **zero share**: exact zeros among the elements of floating-point weights (−0 counts as zero).
 * - **quantized compute ops**: integer ops (QLinearConv, MatMulInteger, MatMulNBits…) plus Conv/ConvTranspose/
 *   Gemm/MatMul nodes whose data and weight inputs both come from DequantizeLinear (the QDQ form that onnxruntime
 *   runs with integer kernels). A float compute op with only its weight dequantized is `weightOnly`.
 */
import { toFloat32 } from './codecs.js';
import { DTYPES, type DType } from './dtype.js';
import type { Dim, Graph, Model, Node, Value } from './ir.js';
import { TensorProto_DataLocation, tensorSource } from './proto.js';
import type { Tensor } from './tensor.js';

/** A graph input or output. `shape` is null when the rank is unknown; a dim is a size, a symbolic name or null. */
export interface IOSummary {
  name: string;
  dtype: DType | null;
  shape: Dim[] | null;
}

/** One row of the op histogram. `domain` is '' for the default ONNX domain. */
export interface OpCount {
  opType: string;
  domain: string;
  count: number;
}

/** What `inspectModel` returns; plain data, safe to `JSON.stringify`. */
export interface ModelSummary {
  irVersion: number;
  /** Imported opsets, default domain first (shown as `ai.onnx`). */
  opsetImports: { domain: string; version: number }[];
  producer: { name: string; version: string };
  domain: string;
  modelVersion: number;
  graphName: string;
  /** Graph inputs that are not initializers. */
  inputs: IOSummary[];
  outputs: IOSummary[];
  /** Sorted by count (descending), then by domain and op type. Includes nodes of subgraphs, not of functions. */
  ops: OpCount[];
  /** Nodes of the main graph. */
  nodes: number;
  /** Nodes of the main graph and all its subgraphs. */
  nodesWithSubgraphs: number;
  /** See the module doc for what counts. */
  parameters: number;
  /** Elements of BatchNormalization running means and variances held as weights (included in `parameters`). */
  batchNormStats: number;
  initializers: number;
  sparseInitializers: number;
  /** Constant nodes holding a `value` tensor. */
  constantTensors: number;
  /** Bytes of weights (initializers and Constant tensors) by element type, largest first. */
  bytesByDtype: { dtype: DType; bytes: number; elements: number }[];
  /** Total bytes of weights. */
  weightBytes: number;
  zeroWeights: { zeros: number; total: number; fraction: number };
  quantization: {
    /** Nodes whose op is a quantization op (QuantizeLinear, DequantizeLinear, QLinear*, MatMulInteger, …). */
    ops: number;
    /** `ops` as a fraction of all nodes (0 for an empty graph). */
    opShare: number;
    /** Conv, ConvTranspose, Gemm and MatMul nodes, and their integer forms. */
    computeOps: number;
    /** Compute ops that run quantized (integer ops, or float ops with both inputs dequantized). */
    quantizedComputeOps: number;
    /** Float compute ops whose weight (only) is dequantized. */
    weightOnlyComputeOps: number;
  };
  functions: number;
  subgraphs: number;
  /** Weights whose data was stored in an external data file. */
  externalDataTensors: number;
  metadata: Record<string, string>;
  /** Size of the model file, when the caller passed it. */
  fileBytes?: number;
}

/** Options for `inspectModel`. */
export interface InspectOptions {
  /** The model file's size in bytes, reported as is (the IR does not know where the model came from). */
  fileBytes?: number;
}

/**
 * Ops that quantize, dequantize or compute on quantized values. Anything named QLinear* counts too.
 *
 * @example
 * ```ts
 * QUANTIZATION_OPS.has('DequantizeLinear'); // true
 * ```
 */
export const QUANTIZATION_OPS: ReadonlySet<string> = new Set([
  'QuantizeLinear',
  'DequantizeLinear',
  'DynamicQuantizeLinear',
  'MatMulInteger',
  'ConvInteger',
  'MatMulNBits',
  'QGemm',
  'DynamicQuantizeMatMul',
  'QAttention',
  'DynamicQuantizeLSTM',
  'GatherBlockQuantized',
]);

/** Float compute ops: input 0 is the data, input 1 the weight. */
const FLOAT_COMPUTE = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);
/** Integer compute ops, and which of their inputs hold quantized weights (and int32 biases). */
const INTEGER_COMPUTE: Record<string, number[]> = {
  QLinearConv: [3, 8],
  QLinearMatMul: [3],
  ConvInteger: [1],
  MatMulInteger: [1],
  MatMulNBits: [1],
  QGemm: [3, 6],
  DynamicQuantizeMatMul: [1],
};

/**
 * Whether a node is a quantization op (see `QUANTIZATION_OPS`).
 *
 * @example
 * ```ts
 * model.graph.nodes.filter(isQuantizationOp).length;
 * ```
 */
export function isQuantizationOp(node: Node): boolean {
  return QUANTIZATION_OPS.has(node.opType) || node.opType.startsWith('QLinear');
}

interface Weight {
  tensor: Tensor;
  /** The value the weight is read through (initializer value or Constant output). */
  value: Value | null;
}

function* weightsOf(graph: Graph): Generator<Weight> {
  for (const v of graph.initializers.values()) if (v.initializer) yield { tensor: v.initializer, value: v };
  for (const n of graph.nodes) {
    if (n.opType === 'Constant' && (n.domain === '' || n.domain === 'ai.onnx')) {
      const t = n.getTensor('value');
      if (t) yield { tensor: t, value: n.outputs[0] ?? null };
    }
    for (const s of n.subgraphs()) yield* weightsOf(s);
  }
}

function* graphsOf(graph: Graph): Generator<Graph> {
  yield graph;
  for (const n of graph.nodes) for (const s of n.subgraphs()) yield* graphsOf(s);
}

/** Element count of a quantized integer weight, or 0 when the tensor is not one. */
function quantizedElements(w: Weight): number {
  if (!w.value) return 0;
  for (const { node, index } of w.value.uses) {
    if (node.opType === 'DequantizeLinear' && index === 0) return w.tensor.size;
    const slots = INTEGER_COMPUTE[node.opType];
    if (slots?.includes(index)) {
      if (node.opType === 'MatMulNBits') {
        // B is packed [N, blocks, blobBytes]: the weight matrix it stands for is N×K
        const n = node.getInt('N', 0), k = node.getInt('K', 0);
        return n > 0 && k > 0 ? n * k : w.tensor.size;
      }
      return w.tensor.size;
    }
  }
  return 0;
}

function isBatchNormStat(w: Weight): boolean {
  return !!w.value?.uses.some((u) => u.node.opType === 'BatchNormalization' && (u.index === 3 || u.index === 4));
}

function isFloat(dtype: DType): boolean {
  return DTYPES[dtype].float && dtype !== 'complex64' && dtype !== 'complex128';
}

function countZeros(t: Tensor): number {
  if (t.size === 0) return 0;
  const raw = t.data();
  const values: ArrayLike<number> = t.dtype === 'float32' || t.dtype === 'float64' ? (raw as Float32Array) : toFloat32(raw, t.dtype, t.size);
  let zeros = 0;
  for (let i = 0; i < values.length; i++) if (values[i] === 0) zeros++;
  return zeros;
}

function ioOf(v: Value): IOSummary {
  const type = v.type;
  if (!type || type.kind === 'other') return { name: v.name, dtype: null, shape: null };
  return { name: v.name, dtype: type.elemType ?? null, shape: type.shape ? [...type.shape] : null };
}

/** Where a compute op's input comes from: whether it is the output of a DequantizeLinear. */
function dequantized(v: Value | null | undefined): boolean {
  return v?.producer?.opType === 'DequantizeLinear';
}

/**
 * Summarizes a model: what it takes and returns, what it is made of, how large and how quantized it is.
 *
 * @example
 * ```ts
 * import { loadModel, inspectModel, formatSummary } from 'onnxpress';
 * const model = await loadModel('fixtures/fmnist-cnn.onnx');
 * const summary = inspectModel(model, { fileBytes: 427107 });
 * summary.ops;        // [{ opType: 'Relu', domain: '', count: 3 }, { opType: 'BatchNormalization', … }, …]
 * summary.parameters; // 106058
 * console.log(formatSummary(summary));
 * ```
 */
export function inspectModel(model: Model, options: InspectOptions = {}): ModelSummary {
  const g = model.graph;
  const opsetImports = [...model.opsetImports.entries()]
    .map(([domain, version]) => ({ domain, version }))
    .sort((a, b) => (a.domain === '' || a.domain === 'ai.onnx' ? -1 : b.domain === '' || b.domain === 'ai.onnx' ? 1 : a.domain.localeCompare(b.domain)));

  // op histogram and quantization
  const counts = new Map<string, OpCount>();
  let nodesWithSubgraphs = 0, quantOps = 0, computeOps = 0, quantizedCompute = 0, weightOnly = 0;
  for (const n of g.allNodes()) {
    nodesWithSubgraphs++;
    const domain = n.domain === 'ai.onnx' ? '' : n.domain;
    const key = `${domain}\u0000${n.opType}`;
    const c = counts.get(key) ?? { opType: n.opType, domain, count: 0 };
    c.count++;
    counts.set(key, c);
    if (isQuantizationOp(n)) quantOps++;
    if (n.opType in INTEGER_COMPUTE) {
      computeOps++;
      quantizedCompute++;
    } else if (FLOAT_COMPUTE.has(n.opType) && domain === '') {
      computeOps++;
      if (dequantized(n.inputs[1])) {
        if (dequantized(n.inputs[0])) quantizedCompute++;
        else weightOnly++;
      }
    }
  }
  const ops = [...counts.values()].sort((a, b) => b.count - a.count || a.domain.localeCompare(b.domain) || a.opType.localeCompare(b.opType));

  // weights
  let parameters = 0, batchNormStats = 0, initializers = 0, sparse = 0, constants = 0, external = 0, zeros = 0, floatTotal = 0, subgraphs = -1;
  const byDtype = new Map<DType, { dtype: DType; bytes: number; elements: number }>();
  for (const sg of graphsOf(g)) {
    subgraphs++;
    initializers += [...sg.initializers.values()].filter((v) => v.initializer).length;
    sparse += sg.sparseInitializers.length;
  }
  for (const w of weightsOf(g)) {
    const t = w.tensor;
    if (!w.value?.initializer) constants++;
    if (tensorSource(t)?.dataLocation === TensorProto_DataLocation.EXTERNAL) external++;
    const row = byDtype.get(t.dtype) ?? { dtype: t.dtype, bytes: 0, elements: 0 };
    row.bytes += t.byteLength;
    row.elements += t.size;
    byDtype.set(t.dtype, row);
    if (isFloat(t.dtype)) {
      parameters += t.size;
      floatTotal += t.size;
      zeros += countZeros(t);
      if (isBatchNormStat(w)) batchNormStats += t.size;
    } else if (t.dtype !== 'string') {
      parameters += quantizedElements(w);
    }
  }
  const bytesByDtype = [...byDtype.values()].sort((a, b) => b.bytes - a.bytes || a.dtype.localeCompare(b.dtype));

  const summary: ModelSummary = {
    irVersion: model.irVersion,
    opsetImports,
    producer: { name: model.producerName, version: model.producerVersion },
    domain: model.domain,
    modelVersion: model.modelVersion,
    graphName: g.name,
    inputs: g.inputs.filter((v) => !v.initializer).map(ioOf),
    outputs: g.outputs.map(ioOf),
    ops,
    nodes: g.nodes.length,
    nodesWithSubgraphs,
    parameters,
    batchNormStats,
    initializers,
    sparseInitializers: sparse,
    constantTensors: constants,
    bytesByDtype,
    weightBytes: bytesByDtype.reduce((s, r) => s + r.bytes, 0),
    zeroWeights: { zeros, total: floatTotal, fraction: floatTotal ? zeros / floatTotal : 0 },
    quantization: {
      ops: quantOps,
      opShare: nodesWithSubgraphs ? quantOps / nodesWithSubgraphs : 0,
      computeOps,
      quantizedComputeOps: quantizedCompute,
      weightOnlyComputeOps: weightOnly,
    },
    functions: model.functions.length,
    subgraphs,
    externalDataTensors: external,
    metadata: Object.fromEntries(model.metadata),
  };
  if (options.fileBytes !== undefined) summary.fileBytes = options.fileBytes;
  return summary;
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting

/**
 * Lays out rows as columns padded to their widest cell (two spaces apart). Columns listed in `right` are
 * right-aligned (for numbers). Trailing spaces are trimmed.
 *
 * @example
 * ```ts
 * formatTable([['op', 'count'], ['Conv', '2']], { right: [1] });
 * // "op    count\nConv      2"
 * ```
 */
export function formatTable(rows: readonly (readonly string[])[], options: { right?: readonly number[]; indent?: string } = {}): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const right = new Set(options.right ?? []);
  return rows
    .map((r) => (options.indent ?? '') + r.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

/**
 * A shape as text; unknown dims as `?`, unknown rank as `(unknown rank)`.
 *
 * @example
 * ```ts
 * formatShape(['batch', 1, 28, null]); // "[batch, 1, 28, ?]"
 * ```
 */
export function formatShape(shape: readonly Dim[] | null | undefined): string {
  if (!shape) return '(unknown rank)';
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/**
 * A count with thousands separators.
 *
 * @example
 * ```ts
 * formatCount(1234567); // "1,234,567"
 * ```
 */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/**
 * A fraction as a percentage.
 *
 * @example
 * ```ts
 * formatPercent(0.91796875); // "91.80%"
 * ```
 */
export function formatPercent(fraction: number, digits = 2): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

/**
 * A byte count in binary units.
 *
 * @example
 * ```ts
 * formatBytes(427107); // "417.1 KiB"
 * ```
 */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n, u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[u]}`;
}

function opName(o: { opType: string; domain: string }): string {
  return o.domain ? `${o.domain}.${o.opType}` : o.opType;
}

/**
 * A human-readable report of a summary: an aligned table of facts, then the inputs, outputs and op histogram.
 *
 * @example
 * ```ts
 * console.log(formatSummary(inspectModel(model)));
 * ```
 */
export function formatSummary(s: ModelSummary): string {
  const opsets = s.opsetImports.map((o) => `${o.domain === '' ? 'ai.onnx' : o.domain} ${o.version}`).join(', ') || '(none)';
  const producer = [s.producer.name, s.producer.version].filter(Boolean).join(' ') || '(unknown)';
  const q = s.quantization;
  const facts: string[][] = [
    ['IR version', String(s.irVersion)],
    ['Opsets', opsets],
    ['Producer', producer],
    ['Graph', s.graphName || '(unnamed)'],
  ];
  if (s.fileBytes !== undefined) facts.push(['File size', `${formatCount(s.fileBytes)} bytes${s.fileBytes >= 1024 ? ` (${formatBytes(s.fileBytes)})` : ''}`]);
  facts.push(
    ['Nodes', `${formatCount(s.nodes)}${s.nodesWithSubgraphs !== s.nodes ? ` (${formatCount(s.nodesWithSubgraphs)} with subgraphs)` : ''}, ${s.ops.length} op types`],
    ['Parameters', `${formatCount(s.parameters)}${s.batchNormStats ? ` (${formatCount(s.batchNormStats)} of them BatchNormalization running statistics)` : ''}`],
    ['Weights', s.bytesByDtype.length ? s.bytesByDtype.map((r) => `${r.dtype} ${formatBytes(r.bytes)}`).join(', ') : '(none)'],
    ['Zero weights', s.zeroWeights.total ? `${formatPercent(s.zeroWeights.fraction)} (${formatCount(s.zeroWeights.zeros)} of ${formatCount(s.zeroWeights.total)} float elements)` : '(no float weights)'],
    ['Quantized', `${q.ops} quantization ops (${formatPercent(q.opShare, 1)} of nodes); ${q.quantizedComputeOps} of ${q.computeOps} Conv/Gemm/MatMul ops run quantized${q.weightOnlyComputeOps ? `, ${q.weightOnlyComputeOps} weight-only` : ''}`],
    ['Initializers', `${formatCount(s.initializers)}${s.constantTensors ? ` (+ ${s.constantTensors} Constant tensors)` : ''}${s.sparseInitializers ? ` (+ ${s.sparseInitializers} sparse)` : ''}${s.externalDataTensors ? `, ${s.externalDataTensors} in external data` : ''}`],
    ['Functions', String(s.functions)],
    ['Subgraphs', String(s.subgraphs)],
  );
  const meta = Object.entries(s.metadata);
  if (meta.length) facts.push(['Metadata', meta.map(([k, v]) => `${k}=${v.length > 60 ? v.slice(0, 57) + '...' : v}`).join(', ')]);

  const io = (title: string, list: IOSummary[]): string[] => [
    `${title}:`,
    list.length ? formatTable(list.map((v) => [v.name, v.dtype ?? '?', formatShape(v.shape)]), { indent: '  ' }) : '  (none)',
  ];
  const opRows = s.ops.map((o) => [opName(o), String(o.count)]);
  return [
    formatTable(facts),
    '',
    ...io('Inputs', s.inputs),
    ...io('Outputs', s.outputs),
    '',
    'Ops:',
    opRows.length ? formatTable(opRows, { indent: '  ', right: [1] }) : '  (none)',
  ].join('\n');
}
