/**
 * `quantize.weightOnly`: stores the weights of Conv, Gemm and MatMul in 8 or 4 bits; activations stay float.
 *
 * 1. `bits: 8` — `op(x, W, b)` -> `op(x, DequantizeLinear(Wq, s, 0), b)` with Wq int8, symmetric (zero point 0,
 *    s = max|W| / 127), per output channel by default: axis 0 for Conv and for Gemm with transB = 1, axis 1 for
 *    Gemm with transB = 0, the last axis for MatMul. Biases and the op itself stay float. A per-axis
 *    DequantizeLinear needs opset 13: a model below it has its default-domain opset raised to 13 when every op in
 *    it means the same under opset 13 (see `OPSET_BREAKING_VERSIONS`); otherwise the scales are per-tensor (which
 *    DequantizeLinear-10 has) and the report says why.
 * 2. `bits: 4`, `format: 'MatMulNBits'` (default) — `MatMul(A, W)` / `Gemm(A, W, C)` -> `com.microsoft.MatMulNBits`
 *    (A, B, scales[, zero_points]) [-> `Add(·, beta·C)`], W quantized in blocks of `blockSize` along K. Layout as
 *    onnxruntime's CPU kernel checks it (contrib_ops/cpu/quantization/matmul_nbits_helper.h): B uint8
 *    [N, n_blocks, block_size / 2] (two codes a byte, low nibble first, K padded to whole blocks), scales float
 *    [N · n_blocks], zero points uint4 packed [N · ceil(n_blocks / 2)] (absent: 8). block_size must be a power of 2
 *    and ≥ 16; K need not be a multiple of it. Symmetric (default): codes = round(w / s) + 8 with s = max|w| / 7, no
 *    zero points; asymmetric: s = (max − min) / 15 over the block's range widened to include 0. Gemm's alpha is
 *    folded into W, beta into C. Needs no opset change; adds the `com.microsoft` import.
 * 3. `bits: 4`, `format: 'DequantizeLinear'` — the ONNX-standard form: `op(x, DequantizeLinear(Wq, s[, z]), …)` with
 *    Wq int4 (symmetric) or uint4 + zero points (asymmetric), blocked along K (`block_size` attribute, opset 21,
 *    IR 10). The model's opset is raised to 21 when that is safe; otherwise this throws a PassError naming the ops
 *    in the way. onnxruntime 1.30 runs it; at graph optimization level `all` it fuses DequantizeLinear + MatMul
 *    into MatMulNBits with accuracy_level 4 (int8 activations: faster, less exact), while a DequantizeLinear in
 *    front of a Gemm is not fused and runs on every inference (about 2× slower than float on the fmnist MLP).
 *
 * In every case |w − dq(q(w))| ≤ s / 2 for each weight (each block's or channel's s). Only the main graph is
 * rewritten; nodes in subgraphs are left as they are. With 8 bits a weight shared by several nodes is quantized
 * once (per axis); 4-bit weights are quantized per node. Float weights no node reads any more are removed. The
 * input model is not changed: the result is a copy.
 *
 * This file also holds the weight math and graph helpers that `dynamic.ts` shares (int8 weight quantization,
 * opset raising, name patterns, copies and reports). The static quantizer's `qdq.ts` did not exist when it was
 * written, and its uint8 weights are asymmetric per channel, which onnxruntime's ConvInteger refuses (it takes
 * one weight zero point): the dynamic quantizer's uint8 weights are int8 + 128 instead.
 */
import { z } from 'zod';
import { PassError } from '../errors.js';
import { packInt4, packUint4 } from '../onnx/codecs.js';
import { addConstant, constantOf, dropUnreadConstants, isOnnxDomain } from '../onnx/hygiene/constants.js';
import { inferShapes } from '../onnx/infer/index.js';
import { attr, type Attr, type Graph, type Model, type Node, type Value } from '../onnx/ir.js';
import { decodeModelProto, encodeModel, modelFromProto } from '../onnx/proto.js';
import { Tensor } from '../onnx/tensor.js';
import { parseOptions } from '../pass.js';
import { ensureOpset } from '../onnx/opset.js';

// the opset table and its checks moved to onnx/opset.ts; these names stay importable from here
export { OPSET_BREAKING_VERSIONS, upgradeBlockers as opsetRaiseBlockers } from '../onnx/opset.js';
import type { FallbackReason, NodeReport, QuantizeOutput, QuantizeReport } from './types.js';

// ---------------------------------------------------------------------------------------------------------------
// Options

/**
 * The op types whose weights the weight-only and dynamic quantizers rewrite.
 *
 * @example
 * ```ts
 * quantizeWeightOnly(model, { opTypes: LINEAR_OPS.filter((op) => op !== 'Conv') });
 * ```
 */
export const LINEAR_OPS = ['Conv', 'Gemm', 'MatMul'] as const;
export type LinearOp = (typeof LINEAR_OPS)[number];

const isPowerOfTwo = (n: number) => n > 0 && (n & (n - 1)) === 0;

/**
 * Options of `quantizeWeightOnly` (`quantize.weightOnly`), declared once: defaults, validation and descriptions.
 *
 * @example
 * ```ts
 * weightOnlyOptions.parse({ bits: 4, blockSize: 64 });
 * ```
 */
export const weightOnlyOptions = z
  .object({
    bits: z
      .literal([8, 4])
      .default(8)
      .describe('Weight bits: 8 (int8 + DequantizeLinear, any of Conv/Gemm/MatMul) or 4 (blockwise, Gemm/MatMul only)'),
    perChannel: z
      .boolean()
      .default(true)
      .describe('8 bits: one scale per output channel (needs opset 13, raised when safe) instead of one per tensor'),
    blockSize: z
      .number()
      .int()
      .min(16)
      .refine(isPowerOfTwo, { message: 'Expected a power of 2 (16, 32, 64, …)' })
      .default(32)
      .describe('4 bits: weights per block along K that share a scale (a power of 2, ≥ 16)'),
    symmetric: z
      .boolean()
      .default(true)
      .describe('4 bits: zero point fixed at the middle of the range (no zero-point tensor); false stores a uint4 zero point per block'),
    format: z
      .enum(['MatMulNBits', 'DequantizeLinear'])
      .default('MatMulNBits')
      .describe("4 bits: onnxruntime's com.microsoft MatMulNBits op, or ONNX-standard blockwise int4 DequantizeLinear (opset 21)"),
    accuracyLevel: z
      .number()
      .int()
      .min(0)
      .max(4)
      .default(0)
      .describe("4 bits, MatMulNBits: onnxruntime's accuracy_level (0 = unset/fp32, 4 = int8 activations: faster, less exact)"),
    opTypes: z
      .array(z.enum(LINEAR_OPS))
      .min(1)
      .optional()
      .describe('Op types to quantize (default Conv, Gemm, MatMul for 8 bits; Gemm, MatMul for 4 bits)'),
    exclude: z
      .array(z.string().min(1))
      .default([])
      .describe('Node names or op types to leave in float; in names "*" and "?" act as wildcards'),
    raiseOpset: z
      .boolean()
      .default(true)
      .describe("Raise the model's default-domain opset when a form needs it (13 for per-channel int8, 21 for int4), if every op means the same there"),
  })
  .superRefine((o, ctx) => {
    if (o.bits === 4 && o.opTypes?.includes('Conv')) {
      ctx.addIssue({ code: 'custom', path: ['opTypes'], message: 'Conv weights are quantized to 8 bits only; remove "Conv" or use bits: 8' });
    }
  });
export type WeightOnlyOptions = z.input<typeof weightOnlyOptions>;
type Options = z.output<typeof weightOnlyOptions>;

// ---------------------------------------------------------------------------------------------------------------
// Weight math (shared with dynamic.ts)

/**
 * Rounds to the nearest integer, ties to even (as ONNX's QuantizeLinear does).
 *
 * @example
 * ```ts
 * roundHalfEven(2.5); // 2
 * ```
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Int8 weights with their scales (one, or one per channel of `axis`) and zero point. */
export interface Int8Weights {
  /** int8 values, or uint8 (int8 + 128) when `unsigned`. */
  data: Int8Array | Uint8Array;
  scales: Float32Array;
  zeroPoint: number;
}

/**
 * Symmetric 8-bit quantization of float weights: s = max|w| / qmax per tensor or per index of `axis`, q =
 * round(w / s) clamped to ±qmax, with qmax 127 (63 with `reduceRange`). `unsigned` stores q + 128 as uint8 with
 * zero point 128. An all-zero channel gets s = 1. Throws a PassError naming `name` on NaN or infinite weights.
 *
 * @example
 * ```ts
 * const { data, scales } = quantizeInt8(new Float32Array([1, -2, 0.5, 4]), [2, 2], 0, { name: 'w' });
 * // scales ≈ [2/127, 4/127], data = [64, -127, 16, 127]
 * ```
 */
export function quantizeInt8(
  w: Float32Array,
  dims: readonly number[],
  axis: number | undefined,
  options: { name: string; reduceRange?: boolean; unsigned?: boolean },
): Int8Weights {
  const qmax = options.reduceRange ? 63 : 127;
  const channels = axis === undefined ? 1 : dims[axis]!;
  const inner = axis === undefined ? Math.max(w.length, 1) : product(dims.slice(axis + 1));
  const channelOf = (i: number) => (axis === undefined ? 0 : Math.floor(i / inner) % channels);
  const maxAbs = new Float64Array(channels);
  for (let i = 0; i < w.length; i++) {
    const v = w[i]!;
    if (!Number.isFinite(v)) throw new PassError(`Weight "${options.name}" holds ${v} at element ${i}: only finite weights can be quantized`);
    const c = channelOf(i);
    if (Math.abs(v) > maxAbs[c]!) maxAbs[c] = Math.abs(v);
  }
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const s = Math.fround(maxAbs[c]! / qmax);
    scales[c] = s > 0 ? s : 1; // all zeros (or a max that underflows): any scale represents them exactly
  }
  const zeroPoint = options.unsigned ? 128 : 0;
  const data = options.unsigned ? new Uint8Array(w.length) : new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const q = Math.min(qmax, Math.max(-qmax, roundHalfEven(w[i]! / scales[channelOf(i)]!)));
    data[i] = q + zeroPoint;
  }
  return { data, scales, zeroPoint };
}

/** 4-bit blockwise codes of a weight held as rows of K (one row per output column n). */
export interface Blockwise4 {
  N: number;
  K: number;
  blockSize: number;
  blocks: number;
  /** Unsigned codes 0..15, [N, blocks · blockSize] row-major, K padded with the block's zero point. */
  codes: Uint8Array;
  /** [N · blocks]: scale of block b of row n at n · blocks + b. */
  scales: Float32Array;
  /** [N · blocks] unsigned zero points (8 everywhere when symmetric). */
  zeroPoints: Uint8Array;
  symmetric: boolean;
}

/**
 * Blockwise 4-bit quantization of W given as [N, K] rows: blocks of `blockSize` along K. Symmetric: s = max|w| / 7,
 * code = round(w / s) + 8 (codes 1..15, zero point 8). Asymmetric: over [min(0, lo), max(0, hi)], s = range / 15,
 * z = round(−min / s), code = clamp(round(w / s) + z, 0, 15). Either way |w − (code − z)·s| ≤ s / 2.
 *
 * @example
 * ```ts
 * const q = quantizeBlockwise4(new Float32Array(64).fill(0.5), 2, 32, 32, true);
 * q.scales; // [0.5/7, 0.5/7]
 * ```
 */
export function quantizeBlockwise4(wNK: Float32Array, N: number, K: number, blockSize: number, symmetric: boolean, name = 'weight'): Blockwise4 {
  const blocks = Math.ceil(K / blockSize);
  const padded = blocks * blockSize;
  const codes = new Uint8Array(N * padded);
  const scales = new Float32Array(N * blocks);
  const zeroPoints = new Uint8Array(N * blocks);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < blocks; b++) {
      const start = n * K + b * blockSize;
      const end = n * K + Math.min(K, (b + 1) * blockSize);
      let lo = 0;
      let hi = 0;
      for (let i = start; i < end; i++) {
        const v = wNK[i]!;
        if (!Number.isFinite(v)) throw new PassError(`Weight "${name}" holds ${v} at row ${n}, column ${i - n * K}: only finite weights can be quantized`);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      let s: number;
      let z: number;
      if (symmetric) {
        s = Math.fround(Math.max(-lo, hi) / 7);
        z = 8;
      } else {
        s = Math.fround((hi - lo) / 15);
        z = s > 0 ? Math.min(15, Math.max(0, roundHalfEven(-lo / s))) : 8;
      }
      if (!(s > 0)) s = 1;
      scales[n * blocks + b] = s;
      zeroPoints[n * blocks + b] = z;
      const out = n * padded + b * blockSize;
      for (let j = 0; j < blockSize; j++) {
        const i = start + j;
        codes[out + j] = i < end ? Math.min(15, Math.max(0, roundHalfEven(wNK[i]! / s) + z)) : z;
      }
    }
  }
  return { N, K, blockSize, blocks, codes, scales, zeroPoints, symmetric };
}

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/**
 * W [R, C] row-major -> W^T [C, R].
 *
 * @example
 * ```ts
 * transpose2d(new Float32Array([1, 2, 3, 4, 5, 6]), 2, 3); // [1, 4, 2, 5, 3, 6]
 * ```
 */
export function transpose2d(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Graph helpers (shared with dynamic.ts)

/**
 * A deep copy of a model (through its wire form), so that a quantizer never changes the model it was given.
 *
 * @example
 * ```ts
 * const copy = cloneModel(model);
 * ```
 */
export function cloneModel(model: Model): Model {
  return modelFromProto(decodeModelProto(encodeModel(model)));
}

/**
 * Whether a node name matches one of `patterns`: equal, or a glob where `*` matches any run and `?` one character.
 *
 * @example
 * ```ts
 * matchesAny('/net/net.2/Gemm', ['/net/net.2/*']); // true
 * ```
 */
export function matchesAny(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => {
    if (!/[*?]/.test(p)) return p === name;
    const re = new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
    return re.test(name);
  });
}

/** A Conv/Gemm/MatMul whose weight (input 1) is a float32 constant, and facts the quantizers need. */
export interface LinearSite {
  node: Node;
  op: LinearOp;
  weight: Value;
  w: Tensor;
}

/**
 * Decides whether a linear node can be rewritten: returns the site, or a report row saying why not. Checks the op
 * type list, `exclude` (op types, node names and name globs), a constant float32 weight, Gemm's transA, and what
 * `extra` adds.
 *
 * @example
 * ```ts
 * const site = linearSite(node, ['MatMul'], [], () => undefined);
 * ```
 */
export function linearSite(
  node: Node,
  opTypes: readonly string[],
  exclude: readonly string[],
  extra: (site: LinearSite) => { reason: FallbackReason; detail: string } | undefined,
): LinearSite | NodeReport {
  const row = (reason: FallbackReason, detail: string): NodeReport => ({ node: node.name, opType: node.opType, quantized: false, reason, detail });
  if (!opTypes.includes(node.opType)) return row('excluded', `${node.opType} is not in opTypes (${opTypes.join(', ')})`);
  if (exclude.includes(node.opType)) return row('excluded', `its op type ${node.opType} is in exclude`);
  if (matchesAny(node.name, exclude)) return row('excluded', 'its name matches an exclude pattern');
  const weight = node.inputs[1];
  const w = constantOf(weight);
  if (!weight || !w) return row('not-constant-weight', `its weight "${weight?.name ?? '(none)'}" is not a constant`);
  if (w.dtype !== 'float32') return row('unsupported-shape', `its weight "${weight.name}" is ${w.dtype}; only float32 weights are quantized`);
  if (node.opType === 'Gemm' && node.getInt('transA', 0) !== 0) return row('unsupported-shape', 'Gemm with transA = 1');
  const minRank = node.opType === 'Conv' ? 3 : 2;
  if (w.dims.length < minRank || (node.opType === 'Gemm' && w.dims.length !== 2)) return row('unsupported-shape', `its weight has dims ${JSON.stringify(w.dims)}`);
  const x = node.inputs[0];
  if (x?.elemType && x.elemType !== 'float32') return row('unsupported-shape', `its input "${x.name}" is ${x.elemType}; only float32 activations are handled`);
  const site: LinearSite = { node, op: node.opType as LinearOp, weight, w };
  const why = extra(site);
  return why ? row(why.reason, why.detail) : site;
}

/**
 * Runs shape inference on a model so that quantizers know input ranks and types, then forgets the value_info it
 * added (the written model keeps only what it had). Inference failures are ignored: shapes just stay unknown.
 *
 * @example
 * ```ts
 * inferQuietly(copy);
 * copy.graph.value('/net/net.1/Relu_output_0').shape; // ['batch', 128]
 * ```
 */
export function inferQuietly(model: Model): void {
  const graphs = [model.graph, ...[...model.graph.allNodes()].flatMap((n) => n.subgraphs())];
  const lengths = graphs.map((g) => g.valueInfo.length);
  try {
    inferShapes(model);
  } catch {
    // unknown shapes only make the quantizer more careful
  }
  graphs.forEach((g, i) => g.valueInfo.splice(lengths[i]!));
}

/**
 * Builds a quantizer's report: per-op counts of quantized nodes from the rows.
 *
 * @example
 * ```ts
 * makeReport('weight-only', [{ node: 'fc', opType: 'Gemm', quantized: true }], []).quantizedByOp; // { Gemm: 1 }
 * ```
 */
export function makeReport(mode: QuantizeReport['mode'], nodes: NodeReport[], notes: string[]): QuantizeReport {
  const quantizedByOp: Record<string, number> = {};
  for (const n of nodes) if (n.quantized) quantizedByOp[n.opType] = (quantizedByOp[n.opType] ?? 0) + 1;
  return { mode, nodes, quantizedByOp, notes };
}

/**
 * A float32 tensor's elements (a view, not a copy).
 *
 * @example
 * ```ts
 * floats(Tensor.from('float32', [2], [1, 2])); // Float32Array [1, 2]
 * ```
 */
export function floats(t: Tensor): Float32Array {
  return t.data<Float32Array>();
}

/**
 * Adds a node right before `before`, named after `base` (made unique); its outputs are named `outputs`, or
 * `<base>_output`.
 *
 * @example
 * ```ts
 * const cast = addBefore(g, gemm, { opType: 'Cast', base: 'fc_Cast', inputs: [v], attributes: { to: attr.int(1) } });
 * ```
 */
export function addBefore(
  g: Graph,
  before: Node,
  spec: { opType: string; domain?: string; base: string; inputs: (Value | null)[]; outputs?: (string | null)[]; attributes?: Record<string, Attr> },
): Node {
  return g.addNode({
    opType: spec.opType,
    domain: spec.domain,
    name: g.uniqueNodeName(spec.base),
    inputs: spec.inputs,
    outputs: spec.outputs ?? [`${spec.base}_output`],
    attributes: spec.attributes,
    before,
  });
}

/**
 * Makes readers of `node`'s output read `replacement`, then removes `node`. A graph output keeps its name (the
 * replacement takes it) and its type.
 *
 * @example
 * ```ts
 * replaceNode(gemm, addNode.output()); // "logits" is now produced by the Add
 * ```
 */
export function replaceNode(node: Node, replacement: Value): void {
  const out = node.output(0);
  if (replacement.type === undefined) replacement.type = out.type;
  out.replaceAllUsesWith(replacement);
  node.graph.removeNode(node);
}

// ---------------------------------------------------------------------------------------------------------------
// The quantizer

/** The axis that indexes output channels in a linear op's weight. */
function channelAxis(site: LinearSite): number {
  if (site.op === 'Conv') return 0;
  if (site.op === 'Gemm') return site.node.getInt('transB', 0) ? 0 : 1;
  return site.w.dims.length - 1; // MatMul: [..., K, N]
}

/**
 * Quantizes weights only (see the top of this file): int8 + DequantizeLinear in front of Conv/Gemm/MatMul, or 4-bit
 * blockwise MatMul/Gemm weights as onnxruntime's MatMulNBits or as ONNX int4 DequantizeLinear. Returns a new model
 * and a report; the input model is not changed. Throws an OptionsError for invalid options and a PassError when
 * the 4-bit ONNX form needs an opset the model cannot be raised to.
 *
 * @example
 * ```ts
 * const { model: int8, report } = quantizeWeightOnly(await loadModel('fixtures/fmnist-mlp.onnx'));
 * const { model: q4 } = quantizeWeightOnly(model, { bits: 4, blockSize: 32 }); // com.microsoft.MatMulNBits
 * report.quantizedByOp; // { Gemm: 2 }
 * ```
 */
export function quantizeWeightOnly(model: Model, options: WeightOnlyOptions = {}): QuantizeOutput {
  const o = parseOptions(weightOnlyOptions, options, 'quantize.weightOnly');
  const out = cloneModel(model);
  inferQuietly(out);
  const notes: string[] = [];
  const rows = o.bits === 8 ? weightOnly8(out, o, notes) : weightOnly4(out, o, notes);
  return { model: out, report: makeReport('weight-only', rows, notes) };
}

function weightOnly8(model: Model, o: Options, notes: string[]): NodeReport[] {
  const g = model.graph;
  const opTypes = o.opTypes ?? [...LINEAR_OPS];
  const rows: NodeReport[] = [];
  const sites: LinearSite[] = [];
  for (const node of g.nodes) {
    if (!isOnnxDomain(node) || !(LINEAR_OPS as readonly string[]).includes(node.opType)) continue;
    const s = linearSite(node, opTypes, o.exclude, () => undefined);
    if ('quantized' in s) rows.push(s);
    else sites.push(s);
  }
  if (!sites.length) return rows;
  let perChannel = o.perChannel;
  if (perChannel) {
    const why = ensureOpset(model, 13, notes, o.raiseOpset);
    if (why) {
      perChannel = false;
      notes.push(`weights are per-tensor, not per-channel: a per-axis DequantizeLinear needs opset 13, and ${why}`);
    }
  }
  const why = ensureOpset(model, 10, notes, o.raiseOpset);
  if (why) throw new PassError(`quantize.weightOnly needs DequantizeLinear (opset 10), but ${why}`);
  const cache = new Map<string, { q: Value; s: Value; z: Value }>();
  const originals = new Set<Value>();
  for (const site of sites) {
    const { node, weight, w } = site;
    const axis = perChannel ? channelAxis(site) : undefined;
    const key = `${weight.name}|${axis ?? 'tensor'}`;
    let qv = cache.get(key);
    if (!qv) {
      const q = quantizeInt8(floats(w), w.dims, axis, { name: weight.name });
      const sDims = axis === undefined ? [] : [w.dims[axis]!];
      qv = {
        q: addConstant(g, `${weight.name}_quantized`, Tensor.from('int8', w.dims, q.data as Int8Array)),
        s: addConstant(g, `${weight.name}_scale`, Tensor.from('float32', sDims, q.scales)),
        z: addConstant(g, `${weight.name}_zero_point`, Tensor.from('int8', sDims, new Int8Array(q.scales.length))),
      };
      cache.set(key, qv);
    }
    const dq = addBefore(g, node, {
      opType: 'DequantizeLinear',
      base: `${node.name}_weight_DequantizeLinear`,
      inputs: [qv.q, qv.s, qv.z],
      outputs: [`${weight.name}_dequantized`],
      attributes: axis === undefined ? {} : { axis: attr.int(axis) },
    });
    dq.output().type = { kind: 'tensor', elemType: 'float32', shape: [...w.dims] };
    originals.add(weight);
    node.setInput(1, dq.output());
    rows.push({
      node: node.name,
      opType: node.opType,
      quantized: true,
      detail: `weights int8 ${axis === undefined ? 'per-tensor' : `per-channel (axis ${axis})`}; the op runs in float`,
    });
  }
  dropUnreadConstants(originals);
  return rows;
}

function weightOnly4(model: Model, o: Options, notes: string[]): NodeReport[] {
  const g = model.graph;
  const opTypes = o.opTypes ?? ['Gemm', 'MatMul'];
  const rows: NodeReport[] = [];
  const sites: LinearSite[] = [];
  const nbits = o.format === 'MatMulNBits';
  for (const node of g.nodes) {
    if (!isOnnxDomain(node) || !(LINEAR_OPS as readonly string[]).includes(node.opType)) continue;
    const s = linearSite(node, opTypes, o.exclude, (site) => {
      if (site.w.dims.length !== 2) return { reason: 'unsupported-shape', detail: `4-bit weights must be 2-D; this one has dims ${JSON.stringify(site.w.dims)}` };
      const a = node.inputs[0];
      if (site.op === 'MatMul' && a?.shape && a.shape.length < 2) return { reason: 'unsupported-shape', detail: `its input "${a.name}" has rank ${a.shape.length}` };
      if (nbits && site.op === 'Gemm' && node.getFloat('beta', 1) !== 1 && node.inputs[2] && !constantOf(node.inputs[2])) {
        return { reason: 'unsupported-shape', detail: 'Gemm with beta ≠ 1 and a C that is not constant' };
      }
      return undefined;
    });
    if ('quantized' in s) rows.push(s);
    else sites.push(s);
  }
  if (!sites.length) return rows;
  if (nbits) {
    if (!model.opsetImports.has('com.microsoft')) model.opsetImports.set('com.microsoft', 1);
  } else {
    const why = ensureOpset(model, 21, notes, o.raiseOpset);
    if (why) throw new PassError(`quantize.weightOnly (bits: 4, format: DequantizeLinear) needs a blockwise int4 DequantizeLinear (opset 21), but ${why}; use format: 'MatMulNBits' for onnxruntime`);
    model.irVersion = Math.max(model.irVersion, 10); // int4 tensors
  }
  const originals = new Set<Value>();
  for (const site of sites) {
    const { node, weight, w } = site;
    const transB = site.op === 'Gemm' && node.getInt('transB', 0) !== 0;
    const [K, N] = transB ? [w.dims[1]!, w.dims[0]!] : [w.dims[0]!, w.dims[1]!];
    let wNK = transB ? floats(w) : transpose2d(floats(w), K, N);
    const alpha = site.op === 'Gemm' ? node.getFloat('alpha', 1) : 1;
    if (nbits && alpha !== 1) wNK = wNK.map((v) => v * alpha); // Gemm's alpha folded into W
    const q = quantizeBlockwise4(wNK, N, K, o.blockSize, o.symmetric, weight.name);
    originals.add(weight);
    const layout = `block ${o.blockSize} along K = ${K}, ${o.symmetric ? 'symmetric' : 'asymmetric'}`;
    if (nbits) {
      rewriteMatMulNBits(g, site, q, o, originals);
      rows.push({ node: node.name, opType: node.opType, quantized: true, detail: `com.microsoft.MatMulNBits, 4-bit ${layout}` });
    } else {
      insertInt4Dequantize(g, site, q, transB);
      rows.push({ node: node.name, opType: node.opType, quantized: true, detail: `int4 DequantizeLinear, ${layout}; the op runs in float` });
    }
  }
  dropUnreadConstants(originals);
  return rows;
}

/** `MatMul(A, W)` / `Gemm(A, W, C)` -> `MatMulNBits(A, B, scales[, zp])` [-> `Add(·, beta·C)`]. */
function rewriteMatMulNBits(g: Graph, site: LinearSite, q: Blockwise4, o: Options, originals: Set<Value>): void {
  const { node, weight } = site;
  const blob = q.blockSize / 2;
  const b = addConstant(g, `${weight.name}_q4`, Tensor.fromBytes('uint8', [q.N, q.blocks, blob], packUint4(q.codes)));
  const s = addConstant(g, `${weight.name}_scales`, Tensor.from('float32', [q.N * q.blocks], q.scales));
  const inputs: (Value | null)[] = [node.input(0), b, s];
  if (!q.symmetric) {
    const perRow = Math.ceil(q.blocks / 2) * 2; // each row's zero points start on a byte boundary
    const zp = new Uint8Array(q.N * perRow);
    for (let n = 0; n < q.N; n++) zp.set(q.zeroPoints.subarray(n * q.blocks, (n + 1) * q.blocks), n * perRow);
    inputs.push(addConstant(g, `${weight.name}_zero_points`, Tensor.fromBytes('uint8', [q.N * (perRow / 2)], packUint4(zp))));
  }
  const mm = addBefore(g, node, {
    opType: 'MatMulNBits',
    domain: 'com.microsoft',
    base: `${node.name}_MatMulNBits`,
    inputs,
    attributes: { K: attr.int(q.K), N: attr.int(q.N), bits: attr.int(4), block_size: attr.int(q.blockSize), accuracy_level: attr.int(o.accuracyLevel) },
  });
  let y = mm.output();
  const c = site.op === 'Gemm' ? node.inputs[2] : undefined;
  if (c) {
    const beta = node.getFloat('beta', 1);
    let bias: Value = c;
    if (beta !== 1) {
      const ct = constantOf(c)!; // linearSite let only constant C through when beta ≠ 1
      bias = addConstant(g, `${c.name}_times_beta`, Tensor.from('float32', ct.dims, floats(ct).map((v) => v * beta)));
      originals.add(c);
    }
    y = addBefore(g, node, { opType: 'Add', base: `${node.name}_bias_Add`, inputs: [y, bias] }).output();
  }
  replaceNode(node, y);
}

/** `op(A, W, …)` -> `op(A, DequantizeLinear(Wq int4|uint4, s[, z]; axis = K's axis, block_size), …)`. */
function insertInt4Dequantize(g: Graph, site: LinearSite, q: Blockwise4, transB: boolean): void {
  const { node, weight, w } = site;
  const { N, K, blocks } = q;
  const padded = blocks * q.blockSize;
  // element (n, k) of the quantized W in W's own layout: [N, K] when transB, else [K, N]
  const values = new Int8Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const code = q.codes[n * padded + k]!;
      values[transB ? n * K + k : k * N + n] = q.symmetric ? code - 8 : code;
    }
  }
  const sDims = transB ? [N, blocks] : [blocks, N];
  const scales = new Float32Array(N * blocks);
  const zps = new Uint8Array(N * blocks);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < blocks; b++) {
      const at = transB ? n * blocks + b : b * N + n;
      scales[at] = q.scales[n * blocks + b]!;
      zps[at] = q.zeroPoints[n * blocks + b]!;
    }
  }
  const dtype = q.symmetric ? 'int4' : 'uint4';
  const inputs: Value[] = [
    addConstant(g, `${weight.name}_q4`, Tensor.fromBytes(dtype, w.dims, q.symmetric ? packInt4(values) : packUint4(values))),
    addConstant(g, `${weight.name}_scales`, Tensor.from('float32', sDims, scales)),
  ];
  if (!q.symmetric) inputs.push(addConstant(g, `${weight.name}_zero_points`, Tensor.fromBytes('uint4', sDims, packUint4(zps))));
  const dq = addBefore(g, node, {
    opType: 'DequantizeLinear',
    base: `${node.name}_weight_DequantizeLinear`,
    inputs,
    outputs: [`${weight.name}_dequantized`],
    attributes: { axis: attr.int(transB ? 1 : 0), block_size: attr.int(q.blockSize) },
  });
  dq.output().type = { kind: 'tensor', elemType: 'float32', shape: [...w.dims] };
  node.setInput(1, dq.output());
}
