/**
 * The arithmetic of linear quantization and the graph helpers that insert QuantizeLinear / DequantizeLinear.
 *
 * Math (as ONNX QuantizeLinear / DequantizeLinear define it, and as onnxruntime computes it in float32):
 * - `q(x) = saturate(rint(x / scale) + zeroPoint)`, rint rounding half to even; `dq(q) = (q - zeroPoint) * scale`.
 * - Activations (`computeQParams`): the range is widened to contain 0 so that 0 is exactly representable (its
 *   code is the zero point: padding and Relu's zeros lose nothing), then
 *   asymmetric: `scale = (max - min) / (qmax - qmin)`, `zeroPoint = rint(qmin - min / scale)`;
 *   symmetric: `scale = max(|min|, |max|) / 127`, zero point 0 (int8) or 128 (uint8).
 * - Weights (`quantizeWeight`): int8 symmetric per channel (`scale_c = max|w_c| / 127`, zero point 0; 64 with
 *   `reduceRange`, the 7-bit weights that keep u8×s8 pair sums inside int16 on CPUs without VNNI), or uint8
 *   asymmetric per channel.
 * - Biases (`quantizeBias`): int32 with `scale_c = inputScale × weightScale_c` and zero point 0, the scale the
 *   integer kernels assume. When a bias does not fit int32 at that scale the weight scale of its channel is raised
 *   until it does (the weights are then re-quantized by the caller), as onnxruntime's own quantizer does.
 *
 * Every scale is a float32 (what the model stores), and positive; every zero point lies in its type's range.
 */
import { PassError, expected } from '../errors.js';
import { attr, type Graph, type Node, type Use, type Value } from '../onnx/ir.js';
import { Tensor } from '../onnx/tensor.js';
import type { TensorRange } from './types.js';

/** Integer types a tensor is quantized to. */
export type QuantType = 'uint8' | 'int8';

/** Per-tensor quantization parameters. */
export interface QParams {
  /** float32, > 0 */
  scale: number;
  zeroPoint: number;
  type: QuantType;
}

/** Per-channel (or per-tensor, with one channel) quantized data. */
export interface QuantizedTensor {
  type: QuantType;
  dims: readonly number[];
  data: Int8Array | Uint8Array;
  scales: Float32Array;
  zeroPoints: Int8Array | Uint8Array;
  /** Quantization axis, or undefined for per-tensor. */
  axis?: number;
}

/** The smallest scale used (float32's smallest normal): smaller ones would make x / scale overflow. */
export const MIN_SCALE = 2 ** -126;
/** The largest int32 magnitude a bias may take. */
export const INT32_MAX = 2 ** 31 - 1;

/**
 * The storage range of a type.
 *
 * @example
 * ```ts
 * typeRange('int8'); // [-128, 127]
 * ```
 */
export function typeRange(type: QuantType): [number, number] {
  return type === 'uint8' ? [0, 255] : [-128, 127];
}

/**
 * The range of codes a quantizer uses: the full storage range, [-127, 127] for symmetric int8 (so that negation
 * is exact), and half the range for `reduceRange` (7 bits: [0, 127] for uint8, [-64, 64] for int8).
 *
 * @example
 * ```ts
 * quantRange('int8', { symmetric: true }); // [-127, 127]
 * ```
 */
export function quantRange(type: QuantType, { symmetric = false, reduceRange = false }: { symmetric?: boolean; reduceRange?: boolean } = {}): [number, number] {
  if (type === 'uint8') return reduceRange ? [0, 127] : [0, 255];
  if (reduceRange) return [-64, 64];
  return symmetric ? [-127, 127] : [-128, 127];
}

/**
 * Rounds to the nearest integer, ties to even (C's `rint` in the default rounding mode, as onnxruntime rounds).
 *
 * @example
 * ```ts
 * [0.5, 1.5, 2.5, -0.5, -1.5].map(rint); // [0, 2, 2, -0, -2]
 * ```
 */
export function rint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * Scale and zero point for a tensor whose values lie in `range`. The range is first widened to contain 0.
 * Throws a PassError naming `what` for a range that is not finite or has min > max.
 *
 * @example
 * ```ts
 * computeQParams({ min: 0, max: 6 }, 'uint8'); // { scale: 0.0235294…, zeroPoint: 0, type: 'uint8' }
 * computeQParams({ min: -1, max: 3 }, 'int8', { symmetric: true }); // { scale: 3 / 127, zeroPoint: 0, … }
 * ```
 */
export function computeQParams(
  range: TensorRange,
  type: QuantType,
  { symmetric = false, reduceRange = false, what = 'a tensor' }: { symmetric?: boolean; reduceRange?: boolean; what?: string } = {},
): QParams {
  if (!Number.isFinite(range.min) || !Number.isFinite(range.max) || range.min > range.max) {
    throw new PassError(expected('a finite range with min ≤ max', what, `[${range.min}, ${range.max}]`));
  }
  const lo = Math.min(range.min, 0);
  const hi = Math.max(range.max, 0);
  const [qmin, qmax] = quantRange(type, { symmetric, reduceRange });
  if (symmetric) {
    // int8: codes ±qmax around 0; uint8: the middle code (128, or 64 with reduceRange) is zero
    const zeroPoint = type === 'uint8' ? Math.ceil((qmin + qmax) / 2) : 0;
    const absmax = Math.max(-lo, hi);
    return { scale: positiveScale(absmax / (qmax - zeroPoint)), zeroPoint, type };
  }
  const scale = positiveScale((hi - lo) / (qmax - qmin));
  const zeroPoint = clamp(rint(qmin - lo / scale), qmin, qmax);
  return { scale, zeroPoint, type };
}

/** A float32 scale from a positive real one: 1 for an all-zero range, at least MIN_SCALE otherwise. */
function positiveScale(s: number): number {
  if (!(s > 0)) return 1;
  return Math.max(Math.fround(s), MIN_SCALE);
}

/**
 * Quantizes one value as onnxruntime's QuantizeLinear does (float32 division, rint, saturation).
 *
 * @example
 * ```ts
 * quantizeValue(0.5, { scale: 0.25, zeroPoint: 10, type: 'uint8' }); // 12
 * ```
 */
export function quantizeValue(x: number, p: QParams): number {
  const [lo, hi] = typeRange(p.type);
  return clamp(rint(Math.fround(Math.fround(x) / p.scale)) + p.zeroPoint, lo, hi);
}

/**
 * Dequantizes one code as DequantizeLinear does.
 *
 * @example
 * ```ts
 * dequantizeValue(12, { scale: 0.25, zeroPoint: 10, type: 'uint8' }); // 0.5
 * ```
 */
export function dequantizeValue(q: number, p: QParams): number {
  return Math.fround((q - p.zeroPoint) * p.scale);
}

/** The number of elements per step of `axis` (the product of the dims after it). */
function innerSize(dims: readonly number[], axis: number): number {
  let n = 1;
  for (let i = axis + 1; i < dims.length; i++) n *= dims[i]!;
  return n;
}

/** Options of `quantizeWeight`. */
export interface WeightQuantOptions {
  /** Per-channel along this axis; undefined for per-tensor. */
  axis?: number;
  reduceRange?: boolean;
  /** Lower bounds for the scales (one per channel), e.g. raised by `quantizeBias` so that the bias fits int32. */
  minScales?: Float32Array;
}

/**
 * Quantizes a float weight: int8 symmetric (zero points 0) or uint8 asymmetric, per channel along `axis` or per
 * tensor.
 *
 * @example
 * ```ts
 * const w = quantizeWeight(new Float32Array([1, -2, 0.5, 0.25]), [2, 2], 'int8', { axis: 0 });
 * w.scales; // Float32Array [2 / 127, 0.5 / 127]
 * w.data; // Int8Array [64, -127, 127, 64]
 * ```
 */
export function quantizeWeight(x: Float32Array, dims: readonly number[], type: QuantType, options: WeightQuantOptions = {}): QuantizedTensor {
  const { axis, reduceRange = false, minScales } = options;
  const channels = axis === undefined ? 1 : dims[axis]!;
  const inner = axis === undefined ? x.length : innerSize(dims, axis);
  // the weight as blocks of `inner` consecutive elements, block b belonging to channel b % channels (plain loops
  // over blocks: this runs over every weight of the model)
  const blocks = inner === 0 ? 0 : x.length / inner;
  const lo = new Float64Array(channels);
  const hi = new Float64Array(channels);
  for (let b = 0; b < blocks; b++) {
    const c = b % channels;
    let l = lo[c]!, h = hi[c]!;
    for (let i = b * inner, end = i + inner; i < end; i++) {
      const v = x[i]!;
      if (v - v !== 0) throw new PassError(expected('finite weights', `element ${i} of a weight with dims [${dims.join(', ')}]`, v));
      if (v < l) l = v;
      if (v > h) h = v;
    }
    lo[c] = l;
    hi[c] = h;
  }
  const scales = new Float32Array(channels);
  const zeroPoints = type === 'int8' ? new Int8Array(channels) : new Uint8Array(channels);
  const [qmin, qmax] = quantRange(type, { symmetric: type === 'int8', reduceRange });
  for (let c = 0; c < channels; c++) {
    const p = computeQParams({ min: lo[c]!, max: hi[c]! }, type, { symmetric: type === 'int8', reduceRange });
    const scale = minScales && minScales[c]! > p.scale ? minScales[c]! : p.scale;
    scales[c] = scale;
    // a raised scale moves an asymmetric zero point: recompute it so that 0 stays exact
    zeroPoints[c] = scale === p.scale ? p.zeroPoint : type === 'int8' ? 0 : clamp(rint(qmin - Math.min(lo[c]!, 0) / scale), qmin, qmax);
  }
  const data = type === 'int8' ? new Int8Array(x.length) : new Uint8Array(x.length);
  const [tlo, thi] = typeRange(type);
  for (let b = 0; b < blocks; b++) {
    const c = b % channels;
    const scale = scales[c]!, zp = zeroPoints[c]!;
    // as quantizeValue: round(x / scale) half to even, in float32 arithmetic, plus the zero point, saturated
    for (let i = b * inner, end = i + inner; i < end; i++) data[i] = clamp(rint(Math.fround(Math.fround(x[i]!) / scale)) + zp, tlo, thi);
  }
  return { type, dims: [...dims], data, scales, zeroPoints, axis };
}

/**
 * The smallest and largest element (NaN-free data assumed; an empty array gives [0, 0]).
 *
 * @example
 * ```ts
 * minMax(new Float32Array([3, -1, 2])); // { min: -1, max: 3 }
 * ```
 */
export function minMax(x: ArrayLike<number>): TensorRange {
  let min = x.length ? Infinity : 0;
  let max = x.length ? -Infinity : 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

/**
 * Quantizes a whole tensor with one set of params (constants quantized like activations, e.g. Add's).
 *
 * @example
 * ```ts
 * quantizeWithParams(new Float32Array([0, 1]), [2], { scale: 1 / 255, zeroPoint: 0, type: 'uint8' }).data; // [0, 255]
 * ```
 */
export function quantizeWithParams(x: Float32Array, dims: readonly number[], p: QParams): QuantizedTensor {
  const data = p.type === 'int8' ? new Int8Array(x.length) : new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) data[i] = quantizeValue(x[i]!, p);
  return { type: p.type, dims: [...dims], data, scales: Float32Array.of(p.scale), zeroPoints: p.type === 'int8' ? Int8Array.of(p.zeroPoint) : Uint8Array.of(p.zeroPoint) };
}

/** What `quantizeBias` returns. */
export interface QuantizedBias {
  data: Int32Array;
  /** inputScale × weightScale per channel (one value for per-tensor weights). */
  scales: Float32Array;
  /** The weight scales the bias scales were made from: the given ones, raised where the bias would overflow int32. */
  weightScales: Float32Array;
  /** Channels whose weight scale had to be raised (the weights must be re-quantized with `minScales`). */
  raised: number[];
}

/**
 * Quantizes a bias to int32 with zero point 0 and scale `inputScale × weightScales[c]`, c being the channel of
 * each element along the last axis. Where `|b| / scale` exceeds int32, the weight scale of that channel is raised
 * to `|b| / (inputScale × INT32_MAX)` so that it fits; the result lists the channels raised.
 *
 * @example
 * ```ts
 * const b = quantizeBias(new Float32Array([0.5, -1]), 0.1, new Float32Array([0.01, 0.02]));
 * b.data; // Int32Array [500, -500]
 * ```
 */
export function quantizeBias(bias: Float32Array, inputScale: number, weightScales: Float32Array): QuantizedBias {
  const channels = weightScales.length;
  if (channels !== 1 && bias.length % channels !== 0) {
    throw new PassError(expected(`a bias whose length is a multiple of ${channels} channels`, 'a bias', bias.length));
  }
  const channelOf = (i: number) => (channels === 1 ? 0 : i % channels);
  const ws = Float32Array.from(weightScales);
  const raised: number[] = [];
  // the weight scale each channel needs so that every bias element fits: |b| / (sx·ws) ≤ INT32_MAX
  const need = new Float64Array(channels);
  for (let i = 0; i < bias.length; i++) {
    const b = bias[i]!;
    if (!Number.isFinite(b)) throw new PassError(expected('a finite bias', `bias element ${i}`, b));
    const c = channelOf(i);
    need[c] = Math.max(need[c]!, Math.abs(b) / (inputScale * (INT32_MAX - 128)));
  }
  for (let c = 0; c < channels; c++) {
    let s = ws[c]!;
    if (need[c]! > s) {
      s = Math.fround(need[c]! * (1 + 2 ** -20));
      while (s < need[c]!) s = Math.fround(s * (1 + 2 ** -20));
      raised.push(c);
    }
    // a scale product below float32's normal range would dequantize the bias to 0: keep it normal
    while (Math.fround(inputScale * s) < MIN_SCALE) {
      s = Math.fround(s * 2);
      if (!raised.includes(c)) raised.push(c);
    }
    ws[c] = s;
  }
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) scales[c] = Math.fround(inputScale * ws[c]!);
  const data = new Int32Array(bias.length);
  for (let i = 0; i < bias.length; i++) data[i] = clamp(rint(bias[i]! / scales[channelOf(i)]!), -INT32_MAX, INT32_MAX);
  return { data, scales, weightScales: ws, raised };
}

// ---------------------------------------------------------------------------------------------------------------
// Graph helpers

/** A scalar initializer of a type. */
function scalar(type: QuantType | 'float32', v: number): Tensor {
  return Tensor.from(type, [], [v]);
}

/** Key of a parameter pair, for sharing initializers between tensors quantized alike. */
function paramsKey(p: QParams): string {
  return `${p.type}/${new Uint32Array(new Float32Array([p.scale]).buffer)[0]}/${p.zeroPoint}`;
}

/** Names of what `QdqBuilder.quantizeValue` inserted for one tensor. */
export interface InsertedQdq {
  q: Node;
  dq: Node;
  quantized: Value;
  dequantized: Value;
}

/**
 * Names of what quantization adds. Short on purpose: on small models the names of the added nodes and tensors
 * were a tenth of the file (a name is stored once where it is defined and once per reader, and exporters' tensor
 * names run to 50 characters). Added tensors are named after the tensor they quantize plus a suffix, so they can
 * be traced; added nodes get short numbered names (`Q_3`, `DQ_17`): their inputs say what they quantize.
 */
export const SUFFIX = { q: 'Q', dq: 'DQ', quantized: ':q', dequantized: ':dq', scale: ':s', zeroPoint: ':zp' } as const;

/**
 * Inserts Q/DQ pairs and DQ'd constants into a graph, sharing identical scale / zero-point initializers between
 * tensors and one DequantizeLinear per weight. All edits go through the IR API.
 *
 * @example
 * ```ts
 * const b = new QdqBuilder(graph);
 * const { dequantized } = b.quantizeValue(graph.value('x'), { scale: 0.1, zeroPoint: 0, type: 'uint8' }, 'all');
 * ```
 */
export class QdqBuilder {
  readonly #params = new Map<string, [Value, Value]>();
  readonly #constants = new Map<string, Value>();
  /** Per-axis zero-point tensors by content: most are all zeros, and layers of one width can share one. */
  readonly #zeroPoints = new Map<string, Value>();

  constructor(readonly graph: Graph) {}

  /** The (scale, zero point) initializers for per-tensor params, made once per distinct params. */
  params(p: QParams): [Value, Value] {
    const key = paramsKey(p);
    let pair = this.#params.get(key);
    if (!pair) {
      // shared by every tensor with these params, so named for none of them (and short: each is read twice per pair)
      const g = this.graph, k = this.#params.size;
      pair = [g.addInitializer(g.uniqueName(`qp${k}${SUFFIX.scale}`), scalar('float32', p.scale)), g.addInitializer(g.uniqueName(`qp${k}${SUFFIX.zeroPoint}`), scalar(p.type, p.zeroPoint))];
      this.#params.set(key, pair);
    }
    return pair;
  }

  /**
   * Inserts `Q -> DQ` after `v` and makes `readers` read the DQ output (`'all'`: every reader, and a graph output
   * `v` is replaced by the DQ output, which takes its name so that the model's interface does not change).
   */
  quantizeValue(v: Value, p: QParams, readers: readonly Use[] | 'all'): InsertedQdq {
    const g = this.graph;
    const uses = readers === 'all' ? [...v.uses] : readers;
    const [scale, zp] = this.params(p);
    const producer = v.producer && v.producer.graph === g ? v.producer : undefined;
    const anchor = producer ? { after: producer } : { before: uses[0]?.node ?? g.nodes[0] };
    const q = g.addNode({ opType: 'QuantizeLinear', name: g.uniqueNodeName(SUFFIX.q), inputs: [v, scale, zp], outputs: [`${v.name}${SUFFIX.quantized}`], ...anchor });
    const dq = g.addNode({ opType: 'DequantizeLinear', name: g.uniqueNodeName(SUFFIX.dq), inputs: [q.output(), scale, zp], outputs: [`${v.name}${SUFFIX.dequantized}`], after: q });
    q.output().type = { kind: 'tensor', elemType: p.type, shape: v.shape && [...v.shape] };
    dq.output().type = v.type;
    for (const u of uses) u.node.setInput(u.index, dq.output()); // x -> DQ(Q(x)) for the readers that run quantized
    if (readers === 'all' && v.isGraphOutput) {
      // graph outputs keep their names: the float tensor is renamed and the DQ output takes the name
      const name = v.name;
      v.name = g.uniqueName(`${name}_float`);
      dq.output().name = name;
      dq.output().docString = v.docString;
      for (let i = 0; i < g.outputs.length; i++) if (g.outputs[i] === v) g.outputs[i] = dq.output();
    }
    return { q, dq, quantized: q.output(), dequantized: dq.output() };
  }

  /**
   * An initializer of quantized data and a DequantizeLinear reading it, made once per `key` (the weight's name and
   * how it was quantized): returns the DQ output. `zeroPoints: false` omits the zero point (int32 biases: 0).
   */
  dequantizedConstant(key: string, baseName: string, t: { dims: readonly number[]; data: Int8Array | Uint8Array | Int32Array; type: QuantType | 'int32'; scales: Float32Array; zeroPoints?: Int8Array | Uint8Array; axis?: number }, before: Node): Value {
    const known = this.#constants.get(key);
    if (known) return known;
    const g = this.graph;
    const perAxis = t.axis !== undefined && t.scales.length > 1;
    const scaleDims = perAxis ? [t.scales.length] : [];
    const data = g.addInitializer(`${baseName}${SUFFIX.quantized}`, Tensor.from(t.type, t.dims, t.data));
    const scale = g.addInitializer(`${baseName}${SUFFIX.scale}`, Tensor.from('float32', scaleDims, perAxis ? t.scales : t.scales.subarray(0, 1)));
    const inputs: Value[] = [data, scale];
    if (t.zeroPoints && t.type !== 'int32') inputs.push(this.#zeroPoint(baseName, t.type, scaleDims, perAxis ? t.zeroPoints : t.zeroPoints.subarray(0, 1)));
    const dq = g.addNode({
      opType: 'DequantizeLinear',
      name: g.uniqueNodeName(SUFFIX.dq),
      inputs,
      outputs: [`${baseName}${SUFFIX.dequantized}`],
      attributes: perAxis ? { axis: attr.int(t.axis!) } : {},
      before,
    });
    dq.output().type = { kind: 'tensor', elemType: 'float32', shape: [...t.dims] };
    this.#constants.set(key, dq.output());
    return dq.output();
  }

  /**
   * A zero-point initializer, shared by every weight with the same zero points (same type, length and values).
   * Symmetric weights have all-zero zero points, so a model needs about one per distinct layer width: on a small
   * MobileNet that is a few percent of the file. (Dropping the input altogether would save more, but onnxruntime
   * then leaves Gemm/MatMul unfused.)
   */
  #zeroPoint(baseName: string, type: QuantType, dims: number[], values: Int8Array | Uint8Array): Value {
    const key = `${type}|${dims.join(',')}|${Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64')}`;
    let v = this.#zeroPoints.get(key);
    if (!v) {
      v = this.graph.addInitializer(`${baseName}${SUFFIX.zeroPoint}`, Tensor.from(type, dims, values));
      this.#zeroPoints.set(key, v);
    }
    return v;
  }
}
