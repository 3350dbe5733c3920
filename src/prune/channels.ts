/**
 * `prune.channels`: structured pruning. Removes whole output channels of Conv, ConvTranspose, Gemm and MatMul and
 * rewrites everything downstream, so the model is truly smaller and faster (not just sparser).
 *
 * How channels are tracked. Each output channel axis a producer creates is a *channel space*. A walk in graph order
 * gives every value that carries channels a *channel map*: the axis, and the spaces laid along it (several after a
 * Concat; each channel repeated H·W times after a Flatten). Values that meet element-wise (a residual Add, a Mul of
 * two activations) tie their spaces: union-find merges them into one *group*, whose channels are removed together
 * or not at all. The rules, by what reads a value with channels:
 *
 * 1. Conv (group 1), ConvTranspose (group 1), Gemm (A, transA = 0), MatMul (A's last axis, constant 2-D B): a
 *    consumer; its weight loses the matching input channels (Gemm: the columns or rows of B along K, respecting
 *    transB; after a Flatten, the matching blocks of H·W). Its own output channels start a new space.
 * 2. Depthwise Conv (group = C, one output per input channel): the channels pass through; the weight, bias and
 *    `group` follow the input's kept channels. A channel multiplier above 1, or any other grouped Conv: its input
 *    and output channels are left, with a note (removing whole groups' worth is not attempted).
 * 3. BatchNormalization, InstanceNormalization: per-channel parameters are sliced; channels pass through.
 * 4. Element-wise unary ops (Relu, Clip, Sigmoid, …) and pooling (MaxPool, AveragePool, GlobalAveragePool, …):
 *    channels pass through.
 * 5. Element-wise binary ops (Add, Sub, Mul, Div, Max, Min, Sum, Mean, PRelu, Pow): inputs with channels are tied
 *    (union); a constant with one value per channel is sliced; a constant or activation broadcast along the
 *    channel axis (dim 1) is fine; any other input pins the channels (they are left).
 * 6. Concat on the channel axis: the output lays the inputs' spaces side by side (offsets); on another axis, the
 *    inputs are tied. A Concat input without channels contributes a fixed part.
 * 7. Flatten at the channel axis: each channel becomes a block of ∏(dims after it) features (needs static dims).
 * 8. Anything else that reads a value with channels (Reshape, Transpose, Softmax, Split, Slice, LRN, a subgraph,
 *    a graph output, …) pins its channels: they are left, and the report says why. Graph inputs and outputs keep
 *    their shapes.
 *
 * Selection: in each group, floor(sparsity × C) channels (at least one kept) with the lowest score go, ties to the
 * lower index — the kept count rounded to a multiple of `channelMultiple` (8) for onnxruntime's blocked kernels
 * (see `removedCount`). Scores:
 * - `l1` / `l2` (no data): over the group's producers, the norm of the channel's weight slice — or |gamma| of the
 *   BatchNormalization right after the producer (`batchNormScale`) — each producer's scores divided by their mean
 *   so that no layer dominates;
 * - `activation` (with `calibration` data, the default then): the error of replacing the channel by its mean where
 *   each consumer reads it, Σ over consumers of Var(x_c) × Σ W[:, c]², on calibration samples.
 * `remove` names the channels outright (the equivalence tests use it).
 *
 * Bias compensation (with calibration data, `biasCompensation`): a removed channel is replaced by its mean rather
 * than by zero — each Conv (group 1) or Gemm consumer gets Σ_c mean_c · Σ_k W[o, c, k] added to its bias (exact
 * where the channel is constant, up to the zero padding at borders). MatMul and ConvTranspose consumers get none.
 *
 * Recalibration (with calibration data, `recalibrate`): afterwards each Conv's output channels get back the mean and
 * standard deviation they had before pruning (`recalibrate.ts`; BatchNormalization statistics re-estimated, for
 * models whose BatchNormalization is folded into the Conv). Without it a deep network loses most of its accuracy
 * at 50% (measured: ResNet-8 and MobileNet-style fall to chance, 10%).
 *
 * Removing a channel is exact when its output is zero after the activation (weights, bias and BN scale/shift zero);
 * otherwise it is an approximation that compensation reduces and fine-tuning recovers.
 */
import { z } from 'zod';
import { OptionsError, oneOf } from '../errors.js';
import type { DType } from '../onnx/dtype.js';
import { constantOf, isOnnxDomain } from '../onnx/hygiene/constants.js';
import { inferShapes } from '../onnx/infer/index.js';
import { attr, nodeReads, type Dim, type Model, type Node, type Value } from '../onnx/ir.js';
import { Tensor } from '../onnx/tensor.js';
import { parseOptions, type Pass, type PassContext, type PassResult } from '../pass.js';
import type { Dataset } from '../eval/datasets.js';
import { densifySparseInitializers } from './storage.js';
import { channelMoments, outputMoments, recalibrableConvs, recalibrate, type ChannelMoments } from './recalibrate.js';
import {
  PRUNABLE_DTYPES,
  checkNodeNames,
  constantInput,
  copyModel,
  countParams,
  dataOption,
  excludeFirstLastOption,
  excludeOption,
  firstAndLast,
  openData,
  layerSparsityOption,
  readFloat32,
  resolveExclude,
  setConstantInput,
  sliceAxis,
  smallestK,
  type PruneLayerRow,
  type PruneReport,
} from './common.js';

/**
 * How many of a group's `channels` go at `sparsity`: floor(sparsity × C), at least one channel kept; then, for
 * groups of at least `multiple` channels, the kept count rounded to the nearest multiple of `multiple` (halves
 * keep more), so that onnxruntime's blocked kernels still apply.
 *
 * @example
 * ```ts
 * removedCount(32, 0.3, 8); // 8: keeps 24 (23 would leave onnxruntime's NCHWc path)
 * removedCount(32, 0.3, 1); // 9
 * ```
 */
export function removedCount(channels: number, sparsity: number, multiple = 1): number {
  let keep = channels - Math.min(channels - 1, Math.floor(sparsity * channels + 1e-9));
  if (multiple > 1 && channels >= multiple) keep = Math.min(channels, Math.max(multiple, Math.round(keep / multiple) * multiple));
  return channels - keep;
}

/**
 * Options of `prune.channels`.
 *
 * @example
 * ```ts
 * channelsOptions.parse({ sparsity: 0.5, criterion: 'l2' });
 * ```
 */
export const channelsOptions = z
  .object({
    sparsity: z.number().min(0).max(1).default(0.5).describe('Fraction of the channels of each channel group removed (rounded down; at least one channel stays)'),
    criterion: z
      .enum(['l1', 'l2', 'activation'])
      .optional()
      .describe("How channels are ranked: 'l1' or 'l2' norm of their weights, or 'activation' (variance on calibration data × the weights reading it); default 'activation' with calibration data, else 'l1'"),
    batchNormScale: z.boolean().default(true).describe("'l1', 'l2': rank by |gamma| of the BatchNormalization right after a producer, when there is one"),
    calibration: dataOption('calibration').optional(),
    calibrationSamples: z.number().int().min(1).default(256).describe('Calibration samples for the activation ranking and bias compensation'),
    biasCompensation: z.boolean().default(true).describe('With calibration data: fold the mean of each removed channel into the bias of the layers that read it'),
    recalibrate: z
      .boolean()
      .default(true)
      .describe("With calibration data: give each Conv's output channels back the mean and spread they had before pruning (BatchNormalization statistics re-estimated, on folded models)"),
    channelMultiple: z
      .number()
      .int()
      .min(1)
      .default(8)
      .describe(
        'Round the channels each group keeps to a multiple of this (1: no rounding). onnxruntime runs CPU convolutions and pools in blocks of 8 channels (NCHWc; 16 with AVX-512): off that grid they leave the blocked path, and a 25–30%-pruned CNN ran 1.1–1.2× slower than the unpruned one',
      ),
    layerSparsity: layerSparsityOption,
    remove: z
      .record(z.string(), z.array(z.number().int().min(0)))
      .optional()
      .describe('Channels to remove, by the name of a node that produces the group (overrides the ranking for that group)'),
    exclude: excludeOption,
    excludeFirstLast: excludeFirstLastOption,
  })
  .superRefine((o, ctx) => {
    if (o.criterion === 'activation' && o.calibration === undefined) {
      ctx.addIssue({ code: 'custom', path: ['calibration'], message: "criterion 'activation' needs calibration data (a dataset descriptor path or a Dataset)" });
    }
  });
export type ChannelsOptions = z.input<typeof channelsOptions>;
type Opts = z.output<typeof channelsOptions>;

// ---------------------------------------------------------------------------------------------------------------
// Channel maps and spaces

/** A run of channels of one space along a value's channel axis; each channel spans `repeat` consecutive entries. */
interface Part {
  space: number;
  size: number;
  repeat: number;
}
/** Where a value's channels are: the axis, and the parts laid along it. */
interface CMap {
  axis: number;
  parts: Part[];
}

/** How a node takes part in a group, for the rewrite. `value` is the value whose map gives the kept channels. */
type Member =
  | { kind: 'producer'; node: Node; value: Value }
  | { kind: 'consumer'; node: Node; value: Value }
  | { kind: 'perChannel'; node: Node; value: Value; what: 'bn' | 'in' | 'depthwise' }
  | { kind: 'const'; node: Node; value: Value; index: number; axis: number };

/** A group of tied channels (a union-find root that some producer feeds). */
export interface ChannelGroup {
  /** Names of the nodes whose output channels form the group. */
  producers: string[];
  /** Every node the removal edits, with its role. */
  members: { node: string; role: 'producer' | 'consumer' | 'batchnorm' | 'instancenorm' | 'depthwise' | 'constant' }[];
  channels: number;
  /** The channels removed (ascending); empty when the group is left. */
  remove: number[];
  /** Why the group is left as it is, when it is. */
  frozen?: string;
}

interface Analysis {
  model: Model;
  maps: Map<Value, CMap>;
  sizes: number[];
  parent: number[];
  reasons: string[][];
  members: Member[];
  /** Producers whose output channels are pinned from the start (excluded, grouped), and why. */
  pinned: Map<Node, string>;
}

const find = (a: Analysis, x: number): number => {
  while (a.parent[x] !== x) {
    a.parent[x] = a.parent[a.parent[x]!]!;
    x = a.parent[x]!;
  }
  return x;
};

function newSpace(a: Analysis, size: number, frozen?: string): number {
  const id = a.sizes.length;
  a.sizes.push(size);
  a.parent.push(id);
  a.reasons.push(frozen ? [frozen] : []);
  return id;
}

function freezeSpace(a: Analysis, s: number, why: string): void {
  const r = a.reasons[find(a, s)]!;
  if (!r.includes(why)) r.push(why);
}

function freeze(a: Analysis, m: CMap | undefined, why: string): void {
  if (m) for (const p of m.parts) freezeSpace(a, p.space, why);
}

function union(a: Analysis, x: number, y: number, why: string): void {
  const rx = find(a, x), ry = find(a, y);
  if (rx === ry) return;
  if (a.sizes[rx] !== a.sizes[ry]) {
    freezeSpace(a, rx, why);
    freezeSpace(a, ry, why);
    return;
  }
  a.parent[ry] = rx;
  a.reasons[rx]!.push(...a.reasons[ry]!.filter((r) => !a.reasons[rx]!.includes(r)));
}

/** Ties two maps part by part; maps laid out differently pin both. */
function unionMaps(a: Analysis, x: CMap, y: CMap, node: Node): void {
  const same = x.parts.length === y.parts.length && x.parts.every((p, i) => p.size === y.parts[i]!.size && p.repeat === y.parts[i]!.repeat);
  if (!same) {
    const why = `${node} combines tensors whose channels are laid out differently`;
    freeze(a, x, why);
    freeze(a, y, why);
    return;
  }
  x.parts.forEach((p, i) => union(a, p.space, y.parts[i]!.space, `${node} combines channel groups of different sizes`));
}

const width = (m: CMap) => m.parts.reduce((n, p) => n + p.size * p.repeat, 0);

// ---------------------------------------------------------------------------------------------------------------
// The walk

/** Element-wise unary ops: output channel c depends on input channel c only (rule 4). */
const UNARY = new Set([
  'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Elu', 'Selu', 'Celu', 'Softplus', 'Softsign', 'Gelu',
  'Mish', 'Identity', 'Dropout', 'Abs', 'Neg', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Sign', 'Erf',
  'ThresholdedRelu', 'Cast',
]);
/** Pooling over spatial axes (rule 4; channels on axis 1). */
const POOLS = new Set(['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'GlobalLpPool']);
/** Element-wise binary (and variadic) ops with broadcasting (rule 5). */
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Sum', 'Mean', 'PRelu', 'Pow']);

interface WalkCtx {
  a: Analysis;
  shapeOf: (v: Value) => readonly Dim[] | undefined;
  excluded: Set<Node>;
}

const isFloatConst = (t: Tensor | undefined): t is Tensor => !!t && PRUNABLE_DTYPES.includes(t.dtype as DType);

/** Pins the channels of every input with a map (the fallback, rule 8). */
function pinInputs(c: WalkCtx, n: Node, why?: string): void {
  for (const v of nodeReads(n)) freeze(c.a, c.a.maps.get(v), why ?? `read by ${n}, which channel pruning cannot rewrite`);
}

/** A new space for a producer's output channels: prunable, or pinned with a reason. */
function produce(c: WalkCtx, n: Node, out: Value, size: number, axis: number, pinned?: string): void {
  if (!pinned && c.excluded.has(n)) pinned = `${n} is excluded`;
  const space = newSpace(c.a, size, pinned);
  c.a.maps.set(out, { axis, parts: [{ space, size, repeat: 1 }] });
  if (!pinned) c.a.members.push({ kind: 'producer', node: n, value: out });
  else c.a.pinned.set(n, pinned);
}

/** Records `n` as a consumer of input 0's channels when they are on `axis`; pins them otherwise. */
function consume(c: WalkCtx, n: Node, axis: number): void {
  const x = n.inputs[0]!;
  const m = c.a.maps.get(x);
  if (!m) return;
  if (m.axis !== axis) freeze(c.a, m, `${n} reads the channels of "${x.name}" on another axis`);
  else c.a.members.push({ kind: 'consumer', node: n, value: x });
}

/** Pins mapped inputs other than input 0 (e.g. a Conv whose weight is computed). */
function pinOthers(c: WalkCtx, n: Node, from = 1): void {
  n.inputs.slice(from).forEach((v) => v && freeze(c.a, c.a.maps.get(v), `${n} reads "${v.name}" as a parameter`));
}

/** Pins input 0 when an extra output (BN statistics, MaxPool indices, Dropout mask) is read. */
function extraOutputsRead(n: Node): boolean {
  return n.outputs.slice(1).some((o) => o && (o.uses.length > 0 || o.isGraphOutput));
}

type Rule = (c: WalkCtx, n: Node) => void;

const convRule: Rule = (c, n) => {
  const W = constantInput(n, 1);
  const x = n.inputs[0];
  const out = n.outputs[0];
  if (!x || !out || !isFloatConst(W) || W.dims.length < 3 || (n.inputs[2] && !isFloatConst(constantInput(n, 2)))) return pinInputs(c, n, `${n} has no constant float weight and bias`);
  pinOthers(c, n);
  const g = n.getInt('group', 1);
  const [cout, cinPerGroup] = W.dims as [number, number];
  const xm = c.a.maps.get(x);
  if (g > 1 && cinPerGroup === 1 && cout === g) {
    // rule 2: depthwise, channels pass through
    if (xm) {
      if (xm.axis !== 1) return freeze(c.a, xm, `${n} reads the channels of "${x.name}" on another axis`);
      c.a.maps.set(out, { axis: 1, parts: xm.parts.map((p) => ({ ...p })) });
      c.a.members.push({ kind: 'perChannel', node: n, value: x, what: 'depthwise' });
      if (c.excluded.has(n)) freeze(c.a, xm, `${n} is excluded`);
    }
    return;
  }
  if (g === 1) {
    consume(c, n, 1);
    produce(c, n, out, cout, 1);
    return;
  }
  const why = cinPerGroup === 1 ? `${n} is depthwise with a channel multiplier of ${cout / g}` : `${n} is a grouped convolution (group ${g}): its channels are left (removing whole groups is not attempted)`;
  freeze(c.a, xm, why);
  produce(c, n, out, cout, 1, why);
};

const convTransposeRule: Rule = (c, n) => {
  const W = constantInput(n, 1);
  const out = n.outputs[0];
  if (!out || !isFloatConst(W) || W.dims.length < 3 || (n.inputs[2] && !isFloatConst(constantInput(n, 2)))) return pinInputs(c, n, `${n} has no constant float weight and bias`);
  pinOthers(c, n);
  const g = n.getInt('group', 1);
  if (g !== 1) {
    const why = `${n} is a grouped transposed convolution (group ${g}): its channels are left`;
    freeze(c.a, c.a.maps.get(n.inputs[0]!), why);
    produce(c, n, out, W.dims[1]! * g, 1, why);
    return;
  }
  consume(c, n, 1);
  produce(c, n, out, W.dims[1]!, 1);
};

const gemmRule: Rule = (c, n) => {
  const B = constantInput(n, 1);
  const out = n.outputs[0];
  const C = n.inputs[2] ? constantInput(n, 2) : undefined;
  if (!out || !isFloatConst(B) || B.dims.length !== 2 || (n.inputs[2] && !isFloatConst(C))) return pinInputs(c, n, `${n} has no constant float B and C`);
  pinOthers(c, n);
  if (n.getInt('transA', 0)) freeze(c.a, c.a.maps.get(n.inputs[0]!), `${n} reads A transposed`);
  else consume(c, n, 1);
  const N = n.getInt('transB', 0) ? B.dims[0]! : B.dims[1]!;
  const cd = C?.dims ?? [];
  const pinned = cd.length > 2 || (cd.length >= 1 && cd[cd.length - 1] !== N && cd[cd.length - 1] !== 1) ? `${n} has a C of dims ${JSON.stringify(cd)}` : undefined;
  produce(c, n, out, N, 1, pinned);
};

const matMulRule: Rule = (c, n) => {
  const B = constantInput(n, 1);
  const x = n.inputs[0];
  const out = n.outputs[0];
  const rank = x ? c.shapeOf(x)?.length : undefined;
  if (!x || !out || !isFloatConst(B) || B.dims.length !== 2 || rank === undefined || rank < 2) return pinInputs(c, n, `${n} has no constant 2-D float B or an input of unknown rank`);
  pinOthers(c, n);
  consume(c, n, rank - 1);
  produce(c, n, out, B.dims[1]!, rank - 1);
};

/** Rule 3: per-channel parameters in inputs 1..`params`. */
function normRule(what: 'bn' | 'in', params: number): Rule {
  return (c, n) => {
    const x = n.inputs[0];
    const xm = x && c.a.maps.get(x);
    if (!x || !xm) return pinInputs(c, n);
    const constant = n.inputs.slice(1, 1 + params).every((v) => isFloatConst(constantOf(v)));
    if (xm.axis !== 1 || !constant || extraOutputsRead(n) || (what === 'bn' && n.getInt('training_mode', 0) !== 0)) {
      return freeze(c.a, xm, `${n} is not an inference-mode normalization over axis 1 with constant parameters`);
    }
    pinOthers(c, n);
    c.a.members.push({ kind: 'perChannel', node: n, value: x, what });
    c.a.maps.set(n.outputs[0]!, { axis: 1, parts: xm.parts.map((p) => ({ ...p })) });
  };
}

/** Rule 4. */
const passThrough: Rule = (c, n) => {
  const x = n.inputs[0];
  const xm = x && c.a.maps.get(x);
  if (!x || !xm) return pinInputs(c, n);
  pinOthers(c, n);
  if (extraOutputsRead(n)) return freeze(c.a, xm, `${n} has a second output that is read`);
  if (POOLS.has(n.opType) && xm.axis !== 1) return freeze(c.a, xm, `${n} pools a tensor whose channels are not on axis 1`);
  if (n.outputs[0]) c.a.maps.set(n.outputs[0], { axis: xm.axis, parts: xm.parts.map((p) => ({ ...p })) });
};

/** Rule 5. */
const binaryRule: Rule = (c, n) => {
  const ins = n.inputs.filter((v): v is Value => !!v);
  const mapped = ins.filter((v) => c.a.maps.has(v));
  const out = n.outputs[0];
  if (!mapped.length || !out) return;
  const rankOf = (v: Value) => c.shapeOf(v)?.length ?? v.initializer?.dims.length ?? constantOf(v)?.dims.length;
  const ranks = ins.map(rankOf);
  const R = c.shapeOf(out)?.length ?? (ranks.every((r) => r !== undefined) ? Math.max(...(ranks as number[])) : undefined);
  if (R === undefined || ranks.some((r) => r === undefined)) return pinInputs(c, n, `${n}: the ranks of its inputs are unknown`);
  const axes = mapped.map((v) => c.a.maps.get(v)!.axis + (R - rankOf(v)!));
  const axis = axes[0]!;
  if (axes.some((x) => x !== axis)) return pinInputs(c, n, `${n} combines tensors whose channels are on different axes`);
  const first = c.a.maps.get(mapped[0]!)!;
  for (const v of mapped.slice(1)) unionMaps(c.a, first, c.a.maps.get(v)!, n);
  const C = width(first);
  n.inputs.forEach((v, index) => {
    if (!v || c.a.maps.has(v)) return;
    const r = rankOf(v)!;
    const pos = axis - (R - r);
    if (pos < 0) return; // broadcast along the channel axis
    const t = constantOf(v);
    const d = t ? t.dims[pos] : c.shapeOf(v)?.[pos];
    if (d === 1) return;
    if (t && d === C && isFloatConst(t)) {
      c.a.members.push({ kind: 'const', node: n, value: mapped[0]!, index, axis: pos });
      return;
    }
    freeze(c.a, first, `${n} combines the channels with "${v.name}", whose channels cannot shrink`);
  });
  c.a.maps.set(out, { axis, parts: first.parts.map((p) => ({ ...p })) });
};

/** Rule 6. */
const concatRule: Rule = (c, n) => {
  const out = n.outputs[0];
  const ins = n.inputs.filter((v): v is Value => !!v);
  const mapped = ins.filter((v) => c.a.maps.has(v));
  if (!mapped.length || !out) return;
  const R = c.shapeOf(out)?.length ?? c.shapeOf(mapped[0]!)?.length;
  if (R === undefined) return pinInputs(c, n, `${n}: its rank is unknown`);
  const axis = ((n.getInt('axis') % R) + R) % R;
  const chAxis = c.a.maps.get(mapped[0]!)!.axis;
  if (mapped.some((v) => c.a.maps.get(v)!.axis !== chAxis)) return pinInputs(c, n, `${n} joins tensors whose channels are on different axes`);
  if (axis === chAxis) {
    const parts: Part[] = [];
    for (const v of ins) {
      const m = c.a.maps.get(v);
      if (m) parts.push(...m.parts.map((p) => ({ ...p })));
      else {
        const d = c.shapeOf(v)?.[axis] ?? constantOf(v)?.dims[axis];
        if (typeof d !== 'number') return pinInputs(c, n, `${n}: the size of input "${v.name}" along the channel axis is unknown`);
        parts.push({ space: newSpace(c.a, d, `fixed channels of "${v.name}"`), size: d, repeat: 1 });
      }
    }
    c.a.maps.set(out, { axis, parts });
    return;
  }
  const first = c.a.maps.get(mapped[0]!)!;
  for (const v of mapped.slice(1)) unionMaps(c.a, first, c.a.maps.get(v)!, n);
  if (mapped.length !== ins.length) return freeze(c.a, first, `${n} joins the channels with a tensor whose channels cannot shrink`);
  c.a.maps.set(out, { axis: chAxis, parts: first.parts.map((p) => ({ ...p })) });
};

/** Rule 7. */
const flattenRule: Rule = (c, n) => {
  const x = n.inputs[0];
  const xm = x && c.a.maps.get(x);
  const out = n.outputs[0];
  if (!x || !xm || !out) return;
  const shape = c.shapeOf(x);
  if (!shape) return freeze(c.a, xm, `${n}: the shape of "${x.name}" is unknown`);
  const axis = ((n.getInt('axis', 1) % Math.max(shape.length, 1)) + shape.length) % Math.max(shape.length, 1);
  const after = shape.slice(xm.axis + 1);
  if (axis !== xm.axis || !after.every((d): d is number => typeof d === 'number')) {
    return freeze(c.a, xm, `${n} flattens "${x.name}" at axis ${axis}, not at its channel axis ${xm.axis} followed by static dims`);
  }
  const block = after.reduce((a, b) => a * b, 1);
  c.a.maps.set(out, { axis: 1, parts: xm.parts.map((p) => ({ ...p, repeat: p.repeat * block })) });
};

/** The rules by op type (default domain); every other op pins the channels it reads (rule 8). */
const RULES: Record<string, Rule> = {
  Conv: convRule,
  ConvTranspose: convTransposeRule,
  Gemm: gemmRule,
  MatMul: matMulRule,
  BatchNormalization: normRule('bn', 4),
  InstanceNormalization: normRule('in', 2),
  Concat: concatRule,
  Flatten: flattenRule,
  ...Object.fromEntries([...UNARY, ...POOLS].map((op) => [op, passThrough])),
  ...Object.fromEntries([...BINARY].map((op) => [op, binaryRule])),
};

function analyze(model: Model, o: Opts): Analysis {
  const a: Analysis = { model, maps: new Map(), sizes: [], parent: [], reasons: [], members: [], pinned: new Map() };
  const g = model.graph;
  g.sort();
  // shapes come from a scratch copy, so the model written keeps its own value_info
  const probe = copyModel(model);
  inferShapes(probe);
  const shapeOf = (v: Value) => probe.graph.values.get(v.name)?.shape ?? v.shape;
  const excluded = resolveExclude(model, o.exclude);
  if (o.excludeFirstLast) {
    for (const n of firstAndLast(model, (n) => ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(n.opType) && !!constantOf(n.inputs[1]))) excluded.add(n);
  }
  const c: WalkCtx = { a, shapeOf, excluded };
  for (const n of g.nodes) {
    const rule = isOnnxDomain(n) && n.subgraphs().length === 0 ? RULES[n.opType] : undefined;
    if (rule) rule(c, n);
    else pinInputs(c, n);
  }
  for (const v of g.outputs) freeze(a, a.maps.get(v), `"${v.name}" is a graph output (graph outputs keep their shapes)`);
  return a;
}

// ---------------------------------------------------------------------------------------------------------------
// Selection

interface Group {
  root: number;
  channels: number;
  producers: Member[];
  members: Member[];
  frozen?: string;
  remove: number[];
}

function groupsOf(a: Analysis): Group[] {
  const byRoot = new Map<number, Group>();
  for (const m of a.members) {
    const roots = new Set(a.maps.get(m.value)!.parts.map((p) => find(a, p.space)));
    for (const root of roots) {
      let gr = byRoot.get(root);
      if (!gr) {
        const reasons = a.reasons[root]!;
        byRoot.set(root, (gr = { root, channels: a.sizes[root]!, producers: [], members: [], frozen: reasons.length ? reasons[0] : undefined, remove: [] }));
      }
      if (!gr.members.includes(m)) gr.members.push(m);
      if (m.kind === 'producer') gr.producers.push(m);
    }
  }
  return [...byRoot.values()].filter((gr) => gr.producers.length > 0);
}

/** Per-channel score of one producer: |gamma| of a BN right after it, else the L1/L2 norm of its weight slice. */
function producerScores(m: Member, o: Opts): Float64Array {
  const n = m.node;
  const out = m.value;
  const reader = out.uses.length === 1 && !out.isGraphOutput ? out.uses[0]!.node : undefined;
  if (o.batchNormScale && reader?.opType === 'BatchNormalization' && reader.inputs[0] === out) {
    const gamma = constantOf(reader.inputs[1]);
    if (gamma) return Float64Array.from(readFloat32(gamma), Math.abs);
  }
  const W = constantInput(n, 1)!;
  const w = readFloat32(W);
  const d = W.dims;
  // channel c of the output: which axis of the weight, and the rest
  let axis = 0;
  if (n.opType === 'ConvTranspose') axis = 1;
  else if (n.opType === 'Gemm') axis = n.getInt('transB', 0) ? 0 : 1;
  else if (n.opType === 'MatMul') axis = 1;
  const C = d[axis]!;
  const outer = d.slice(0, axis).reduce((x, y) => x * y, 1);
  const inner = d.slice(axis + 1).reduce((x, y) => x * y, 1);
  const s = new Float64Array(C);
  for (let i = 0; i < outer; i++) {
    for (let ch = 0; ch < C; ch++) {
      const off = (i * C + ch) * inner;
      for (let k = 0; k < inner; k++) {
        const x = w[off + k]!;
        s[ch]! += o.criterion === 'l2' ? x * x : Math.abs(x);
      }
    }
  }
  if (o.criterion === 'l2') for (let ch = 0; ch < C; ch++) s[ch] = Math.sqrt(s[ch]!);
  return s;
}

/** Per-index mean and variance of a value along its channel axis, on calibration samples. */
interface Stats {
  mean: Float64Array;
  variance: Float64Array;
}

/** Statistics of every value a consumer reads with channels (the places where channels leave their group). */
async function consumerStats(a: Analysis, o: Opts): Promise<Map<Value, Stats>> {
  const values = new Map<Value, number>();
  for (const m of a.members) if (m.kind === 'consumer') values.set(m.value, a.maps.get(m.value)!.axis);
  const data = await openData(o.calibration!, a.model);
  const list = [...values];
  const moments = await outputMoments(a.model, data, list.map(([v]) => v.name), o.calibrationSamples, { axes: list.map(([, axis]) => axis), batchSize: 32 });
  const stats = new Map<Value, Stats>();
  list.forEach(([v], i) => {
    const m = moments[i];
    if (m) stats.set(v, m);
  });
  return stats;
}

/** Σ over a consumer's weight of w² per input index (the axis its input channels are on). */
function inputWeightEnergy(n: Node): Float64Array | undefined {
  const W = constantInput(n, 1);
  if (!W) return undefined;
  const axis = n.opType === 'Conv' ? 1 : n.opType === 'Gemm' ? (n.getInt('transB', 0) ? 1 : 0) : 0;
  const w = readFloat32(W);
  const d = W.dims;
  const C = d[axis]!;
  const inner = d.slice(axis + 1).reduce((x, y) => x * y, 1);
  const e = new Float64Array(C);
  for (let i = 0; i < w.length; i++) e[Math.floor(i / inner) % C]! += w[i]! * w[i]!;
  return e;
}

/** The activation score of a group's channels: Σ over consumers of Var(x_c) × Σ W[:, c]² (undefined without stats). */
function activationScores(a: Analysis, gr: Group, stats: Map<Value, Stats>): Float64Array | undefined {
  const score = new Float64Array(gr.channels);
  let any = false;
  for (const m of gr.members) {
    if (m.kind !== 'consumer') continue;
    const st = stats.get(m.value);
    const e = inputWeightEnergy(m.node);
    if (!st || !e) continue;
    let off = 0;
    for (const p of a.maps.get(m.value)!.parts) {
      if (find(a, p.space) === gr.root) {
        for (let ch = 0; ch < p.size; ch++) for (let r = 0; r < p.repeat; r++) score[ch]! += st.variance[off + ch * p.repeat + r]! * e[off + ch * p.repeat + r]!;
        any = true;
      }
      off += p.size * p.repeat;
    }
  }
  return any ? score : undefined;
}

function choose(a: Analysis, groups: Group[], o: Opts, stats?: Map<Value, Stats>): void {
  const byProducer = new Map<string, Group>();
  for (const gr of groups) for (const p of gr.producers) if (p.node.name) byProducer.set(p.node.name, gr);
  const explicit = new Map<Group, number[]>();
  for (const [name, channels] of Object.entries(o.remove ?? {})) {
    const gr = byProducer.get(name);
    if (!gr) throw new OptionsError(`remove: "${name}" is not a node that produces prunable channels ${oneOf(byProducer.keys())}`);
    if (gr.frozen) throw new OptionsError(`remove: the channels of "${name}" cannot be removed: ${gr.frozen}`);
    const set = [...new Set(channels)].sort((x, y) => x - y);
    if (set.some((ch) => ch >= gr.channels)) throw new OptionsError(`remove: "${name}" has ${gr.channels} channels, so channel ${set.find((ch) => ch >= gr.channels)} does not exist`);
    if (set.length >= gr.channels) throw new OptionsError(`remove: "${name}" would lose all ${gr.channels} channels: at least one must stay`);
    explicit.set(gr, set);
  }
  for (const gr of groups) {
    if (gr.frozen) continue;
    const given = explicit.get(gr);
    if (given) {
      gr.remove = given;
      continue;
    }
    const named = gr.producers.map((p) => o.layerSparsity?.[p.node.name]).find((x) => x !== undefined);
    const s = named ?? o.sparsity;
    const count = removedCount(gr.channels, s, o.channelMultiple);
    if (count <= 0) continue;
    const byActivation = o.criterion === 'activation' || (o.criterion === undefined && stats) ? stats && activationScores(a, gr, stats) : undefined;
    if (byActivation) {
      const mask = smallestK(byActivation, count);
      gr.remove = [...mask.keys()].filter((ch) => mask[ch]);
      continue;
    }
    const score = new Float64Array(gr.channels);
    for (const p of gr.producers) {
      const ps = producerScores(p, o);
      if (ps.length !== gr.channels) continue;
      const mean = ps.reduce((x, y) => x + y, 0) / ps.length;
      for (let ch = 0; ch < gr.channels; ch++) score[ch]! += mean > 0 ? ps[ch]! / mean : ps[ch]!;
    }
    const mask = smallestK(score, count);
    gr.remove = [...mask.keys()].filter((ch) => mask[ch]);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Rewrite

/** The entries kept along a value's channel axis, or undefined when nothing along it is removed. */
function keptOf(a: Analysis, m: CMap, removed: Map<number, Set<number>>): number[] | undefined {
  const kept: number[] = [];
  let off = 0, any = false;
  for (const p of m.parts) {
    const rem = removed.get(find(a, p.space));
    for (let ch = 0; ch < p.size; ch++) {
      if (rem?.has(ch)) {
        any = true;
        continue;
      }
      for (let r = 0; r < p.repeat; r++) kept.push(off + ch * p.repeat + r);
    }
    off += p.size * p.repeat;
  }
  return any ? kept : undefined;
}

function sliceInput(n: Node, index: number, axis: number, kept: number[]): void {
  const t = constantInput(n, index);
  if (!t) return;
  if (t.dims[axis] === undefined) return;
  setConstantInput(n, index, sliceAxis(t, axis, kept));
}

/**
 * Bias compensation: for each Conv (group 1) and Gemm consumer, bias[o] += Σ over removed input indices c of
 * mean_c · Σ_k W[o, c, k] (Gemm: times alpha, over beta). Runs before the weights are sliced. Returns notes.
 */
function compensate(a: Analysis, removed: Map<number, Set<number>>, stats: Map<Value, Stats>): string[] {
  const notes: string[] = [];
  for (const m of a.members) {
    if (m.kind !== 'consumer') continue;
    const kept = keptOf(a, a.maps.get(m.value)!, removed);
    const st = stats.get(m.value);
    if (!kept || !st) continue;
    const n = m.node;
    const W = constantInput(n, 1)!;
    if (W.dtype !== 'float32' || !(n.opType === 'Conv' || n.opType === 'Gemm')) {
      notes.push(`no bias compensation for ${n}: only float32 Conv and Gemm consumers get one`);
      continue;
    }
    const keptSet = new Set(kept);
    const gone = [...st.mean.keys()].filter((i) => !keptSet.has(i));
    const w = W.data<Float32Array>();
    const d = W.dims;
    let outs: number, delta: Float64Array;
    if (n.opType === 'Conv') {
      const [O, I] = d as [number, number];
      const K = w.length / (O * I);
      delta = new Float64Array((outs = O));
      for (let o = 0; o < O; o++) for (const c of gone) for (let k = 0; k < K; k++) delta[o]! += st.mean[c]! * w[(o * I + c) * K + k]!;
    } else {
      const transB = n.getInt('transB', 0) !== 0;
      const [r, cols] = d as [number, number];
      outs = transB ? r : cols;
      delta = new Float64Array(outs);
      const alpha = n.getFloat('alpha', 1);
      for (let o = 0; o < outs; o++) for (const c of gone) delta[o]! += alpha * st.mean[c]! * (transB ? w[o * cols + c]! : w[c * cols + o]!);
    }
    const beta = n.opType === 'Gemm' && n.inputs[2] ? n.getFloat('beta', 1) : 1;
    const B = n.inputs[2] ? constantInput(n, 2) : undefined;
    if (n.inputs[2] && (!B || B.dtype !== 'float32')) {
      notes.push(`no bias compensation for ${n}: its bias is not a float32 constant`);
      continue;
    }
    const bd = B?.dims ?? [outs];
    const b = B ? Float32Array.from(B.data<Float32Array>()) : new Float32Array(outs);
    let nb: Float32Array, dims: number[];
    if (b.length === 1 && outs > 1) {
      // a scalar (or [1]) C broadcast over the outputs becomes one value per output
      nb = Float32Array.from({ length: outs }, (_, o) => b[0]! + delta[o]! / beta);
      dims = [outs];
    } else {
      nb = b;
      const cols = bd[bd.length - 1]!;
      for (let i = 0; i < nb.length; i++) nb[i]! += delta[i % cols]! / beta;
      dims = [...bd];
    }
    if (n.opType === 'Gemm' && !n.inputs[2]) n.setAttr('beta', attr.float(1));
    setConstantInput(n, 2, Tensor.from('float32', dims, nb));
  }
  return [...new Set(notes)];
}

function rewrite(a: Analysis, removed: Map<number, Set<number>>): void {
  for (const m of a.members) {
    const kept = keptOf(a, a.maps.get(m.value)!, removed);
    if (!kept) continue;
    const n = m.node;
    switch (m.kind) {
      case 'producer': {
        if (n.opType === 'Conv') {
          sliceInput(n, 1, 0, kept);
          if (n.inputs[2]) sliceInput(n, 2, 0, kept);
        } else if (n.opType === 'ConvTranspose') {
          sliceInput(n, 1, 1, kept);
          if (n.inputs[2]) sliceInput(n, 2, 0, kept);
        } else if (n.opType === 'Gemm') {
          const transB = n.getInt('transB', 0) !== 0;
          const N = constantInput(n, 1)!.dims[transB ? 0 : 1]!;
          sliceInput(n, 1, transB ? 0 : 1, kept);
          const C = n.inputs[2] ? constantInput(n, 2) : undefined;
          if (C && C.dims.length >= 1 && C.dims[C.dims.length - 1] === N && N > 1) sliceInput(n, 2, C.dims.length - 1, kept);
        } else if (n.opType === 'MatMul') {
          sliceInput(n, 1, 1, kept);
        }
        break;
      }
      case 'consumer':
        if (n.opType === 'Conv') sliceInput(n, 1, 1, kept);
        else if (n.opType === 'ConvTranspose') sliceInput(n, 1, 0, kept);
        else if (n.opType === 'Gemm') sliceInput(n, 1, n.getInt('transB', 0) ? 1 : 0, kept);
        else if (n.opType === 'MatMul') sliceInput(n, 1, 0, kept);
        break;
      case 'perChannel':
        if (m.what === 'bn') for (let i = 1; i <= 4; i++) sliceInput(n, i, 0, kept);
        else if (m.what === 'in') for (let i = 1; i <= 2; i++) sliceInput(n, i, 0, kept);
        else {
          sliceInput(n, 1, 0, kept);
          if (n.inputs[2]) sliceInput(n, 2, 0, kept);
          n.setAttr('group', attr.int(kept.length));
        }
        break;
      case 'const':
        sliceInput(n, m.index, m.axis, kept);
        break;
    }
  }
  // the shapes of values whose channels shrank (graph inputs and outputs never do)
  for (const [v, m] of a.maps) {
    const kept = keptOf(a, m, removed);
    if (!kept || v.type?.kind !== 'tensor' || !v.type.shape || v.type.shape.length <= m.axis) continue;
    const shape = [...v.type.shape];
    shape[m.axis] = kept.length;
    v.type = { ...v.type, shape };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Report

interface Dims {
  in: number;
  out: number;
  params: number;
}

/** Input and output channels and weight + bias elements of every Conv, ConvTranspose, Gemm and MatMul with a constant weight. */
function layerDims(model: Model): Map<Node, Dims> {
  const out = new Map<Node, Dims>();
  for (const n of model.graph.nodes) {
    if (!['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(n.opType)) continue;
    const W = constantInput(n, 1);
    if (!W || W.dims.length < 2) continue;
    const g = n.opType.startsWith('Conv') ? n.getInt('group', 1) : 1;
    const d = W.dims;
    let cin: number, cout: number;
    if (n.opType === 'Conv') [cin, cout] = [d[1]! * g, d[0]!];
    else if (n.opType === 'ConvTranspose') [cin, cout] = [d[0]!, d[1]! * g];
    else if (n.opType === 'Gemm' && n.getInt('transB', 0)) [cin, cout] = [d[1]!, d[0]!];
    else [cin, cout] = [d[d.length - 2]!, d[d.length - 1]!];
    const bias = n.opType !== 'MatMul' && n.inputs[2] ? (constantInput(n, 2)?.size ?? 0) : 0;
    out.set(n, { in: cin, out: cout, params: W.size + bias });
  }
  return out;
}

/** What the channels pass returns besides the model. */
export interface ChannelsPassResult extends PassResult {
  report: PruneReport;
  groups: ChannelGroup[];
}

function describeGroups(groups: Group[]): ChannelGroup[] {
  const role = (m: Member): ChannelGroup['members'][number]['role'] =>
    m.kind === 'producer' ? 'producer' : m.kind === 'consumer' ? 'consumer' : m.kind === 'const' ? 'constant' : m.what === 'bn' ? 'batchnorm' : m.what === 'in' ? 'instancenorm' : 'depthwise';
  return groups.map((gr) => {
    const out: ChannelGroup = {
      producers: gr.producers.map((p) => p.node.name),
      members: gr.members.map((m) => ({ node: m.node.name, role: role(m) })),
      channels: gr.channels,
      remove: gr.remove,
    };
    if (gr.frozen) out.frozen = gr.frozen;
    return out;
  });
}

/**
 * The channel groups of a model and the channels the pass would remove from each, without changing anything.
 *
 * @example
 * ```ts
 * for (const g of await planChannels(model, { sparsity: 0.5 })) console.log(g.producers, g.channels, g.remove.length, g.frozen ?? '');
 * ```
 */
export async function planChannels(model: Model, options: ChannelsOptions = {}): Promise<ChannelGroup[]> {
  const o = parseOptions(channelsOptions, options, 'planChannels');
  const copy = copyModel(model);
  densifySparseInitializers(copy);
  const a = analyze(copy, o);
  const groups = groupsOf(a);
  choose(a, groups, o, o.calibration !== undefined ? await consumerStats(a, o) : undefined);
  return describeGroups(groups);
}

/** Prunes `model` (a copy the caller owns) in place. */
export async function channelsInPlace(model: Model, o: Opts, ctx: PassContext = {}): Promise<ChannelsPassResult> {
  if (o.layerSparsity) checkNodeNames(model, Object.keys(o.layerSparsity), 'layerSparsity');
  const notes: string[] = [];
  const densified = densifySparseInitializers(model);
  if (densified) notes.push(`read ${densified} sparse initializer(s) as dense weights`);
  const paramsBefore = countParams(model);
  const a = analyze(model, o);
  const before = layerDims(model);
  const groups = groupsOf(a);
  const stats = o.calibration !== undefined ? await consumerStats(a, o) : undefined;
  ctx.signal?.throwIfAborted();
  choose(a, groups, o, stats);
  const removed = new Map<number, Set<number>>();
  for (const gr of groups) if (gr.remove.length) removed.set(gr.root, new Set(gr.remove));
  // recalibration targets: the Conv outputs' moments of the unpruned model, and each Conv's kept output channels
  let recal: { data: Dataset; target: Map<Node, ChannelMoments>; kept: Map<Node, number[]> } | undefined;
  if (o.calibration !== undefined && o.recalibrate && removed.size) {
    const convs = recalibrableConvs(model);
    const data = await openData(o.calibration, model);
    const kept = new Map<Node, number[]>();
    for (const n of convs) {
      const m = a.maps.get(n.outputs[0]!);
      const k = m && m.axis === 1 ? keptOf(a, m, removed) : undefined;
      if (k) kept.set(n, k);
    }
    recal = { data, target: await channelMoments(model, convs, data, o.calibrationSamples), kept };
  }
  // after the targets are measured: compensation edits biases of the model as it is
  if (stats && o.biasCompensation) notes.push(...compensate(a, removed, stats));
  rewrite(a, removed);
  model.graph.validate();
  if (recal) {
    ctx.signal?.throwIfAborted();
    const n = await recalibrate(model, recal.target, recal.kept, recal.data, o.calibrationSamples);
    if (n) notes.push(`recalibrated ${n} Conv(s): output channel means and spreads restored to those before pruning`);
  }
  const after = layerDims(model);
  for (const [n, why] of a.pinned) notes.push(`left the output channels of ${n}: ${why}`);
  for (const gr of groups) {
    const names = gr.producers.map((p) => p.node.toString()).join(', ');
    if (gr.frozen) notes.push(`left the ${gr.channels} channels of ${names}: ${gr.frozen}`);
  }
  const frozenOf = new Map<Node, string>(a.pinned);
  for (const gr of groups) if (gr.frozen) for (const p of gr.producers) frozenOf.set(p.node, gr.frozen);
  const rows: PruneLayerRow[] = [];
  for (const [n, b] of before) {
    const x = after.get(n) ?? b;
    const row: PruneLayerRow = { node: n.name || `(${n.opType})`, opType: n.opType, weight: n.inputs[1]?.name, params: [b.params, x.params], channelsIn: [b.in, x.in], channelsOut: [b.out, x.out] };
    const why = frozenOf.get(n);
    if (why && x.out === b.out) row.note = `output channels left: ${why}`;
    rows.push(row);
  }
  // totals over the groups that could shrink (a group pinned by a graph output is not prunable)
  const total = groups.reduce((s, gr) => s + (gr.frozen ? 0 : gr.channels), 0);
  const gone = groups.reduce((s, gr) => s + gr.remove.length, 0);
  const report: PruneReport = {
    method: 'channels',
    layers: rows,
    totals: { prunableParams: 0, zeros: [0, 0], sparsity: total ? gone / total : 0, modelParams: [paramsBefore, countParams(model)], channels: [total, total - gone] },
  };
  return { model, modified: gone > 0 || densified > 0, notes, report, groups: describeGroups(groups) };
}

/**
 * The `prune.channels` pass (returns a new model). Its rules are listed at the top of this file.
 *
 * @example
 * ```ts
 * const r = (await runPass(channelsPass, model, { sparsity: 0.5 })) as ChannelsPassResult;
 * r.report.totals.modelParams; // [before, after]
 * ```
 */
export const channelsPass: Pass<typeof channelsOptions> = {
  name: 'prune.channels',
  description: 'Removes whole output channels of Conv, ConvTranspose, Gemm and MatMul and rewrites every layer they feed, so the model is smaller and faster',
  inPlace: false,
  options: channelsOptions,
  run(model, options, ctx): Promise<ChannelsPassResult> {
    return channelsInPlace(copyModel(model), options, ctx);
  },
};
