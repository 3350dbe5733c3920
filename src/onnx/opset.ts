/**
 * Raising a model's default-domain opset, rewriting the nodes whose op changed on the way so that the model computes
 * the same thing: PyTorch's and other tools' older exports (opset 6–9: legacy `broadcast` attributes, attributes
 * that later became inputs, Softmax's old 2-D semantics) can then be quantized, which needs QuantizeLinear (opset
 * 10) and per-channel DequantizeLinear (13).
 *
 * `OPSET_BREAKING_VERSIONS` (below) lists, per op, the versions at which a node may stop being
 * valid or change meaning. For each node whose op changed between the model's opset and the target, the upgrader
 * of that op (one entry per op in `UPGRADERS`, below) either rewrites it or says why it cannot; an op with no
 * upgrader, a node with subgraphs, or a model with local functions blocks the raise. Every blocker is found before
 * anything is changed, so a failed raise leaves the model as it was. Rewrites keep each node's outputs (the same
 * values, with the same names), so names meaning data before still mean the same data after.
 *
 * Checked against onnxruntime on every ONNX conformance model at an older opset (test/onnx/opset.test.ts): each
 * raised model reproduces the stored expected outputs.
 */
import { PassError } from '../errors.js';
import { constantOf, isOnnxDomain } from './hygiene/constants.js';
import { inferShapes } from './infer/index.js';
import { attr, type Graph, type Model, type Node, type Value } from './ir.js';
import { decodeModelProto, encodeModel, modelFromProto } from './proto.js';
import { Tensor } from './tensor.js';

/**
 * Default-domain ops and the opset versions at which they changed in a way that a node written for an earlier
 * opset may not be valid or may not mean the same (attributes turned into inputs, changed defaults or semantics).
 * Versions that only added types or clarified the text are not listed. An op missing from the table blocks any
 * opset change (its history is unknown here); so do ops with subgraphs.
 *
 * @example
 * ```ts
 * OPSET_BREAKING_VERSIONS.Softmax; // [13]: the axis semantics changed
 * ```
 */
export const OPSET_BREAKING_VERSIONS: Readonly<Record<string, readonly number[]>> = {
  // consumed_inputs removed at 6
  Abs: [6], Ceil: [6], Exp: [6], Floor: [6], Log: [6], Neg: [6], Reciprocal: [6], Relu: [6], Sigmoid: [6], Sqrt: [6],
  Tanh: [6], Elu: [6], HardSigmoid: [6], LeakyRelu: [6], Selu: [6], InstanceNormalization: [6],
  // legacy broadcast attribute removed at 7 (numpy broadcasting); variadic ones at 8
  Add: [6, 7], Sub: [6, 7], Mul: [6, 7], Div: [6, 7], PRelu: [6, 7], Gemm: [6, 7], Pow: [7], And: [7], Or: [7], Xor: [7],
  Equal: [7], Greater: [7], Less: [7], Sum: [6, 8], Max: [6, 8], Min: [6, 8], Mean: [6, 8],
  // unchanged in meaning since they appeared
  Sin: [], Cos: [], Tan: [], Asin: [], Acos: [], Atan: [], Sinh: [], Cosh: [], Asinh: [], Acosh: [], Atanh: [], Sign: [],
  Erf: [], Softplus: [], Softsign: [], HardSwish: [], Mish: [], Gelu: [], Round: [], Not: [], IsNaN: [], IsInf: [],
  Celu: [], ThresholdedRelu: [], Shrink: [], GreaterOrEqual: [], LessOrEqual: [], Mod: [], Where: [], BitShift: [],
  Identity: [], Constant: [], ConstantOfShape: [], Range: [], Shape: [], Size: [], Flatten: [], Transpose: [],
  Gather: [], GatherElements: [], GatherND: [], Expand: [], NonZero: [], Trilu: [], CumSum: [], Einsum: [],
  OneHot: [], ScatterElements: [], ScatterND: [], DepthToSpace: [], SpaceToDepth: [], ArgMax: [], ArgMin: [],
  CastLike: [], Compress: [], StringNormalizer: [], TfIdfVectorizer: [], Unique: [], EyeLike: [], Det: [], ReverseSequence: [],
  SequenceConstruct: [], SequenceInsert: [], SequenceAt: [], SequenceErase: [], SequenceLength: [], SequenceEmpty: [],
  ConcatFromSequence: [], SplitToSequence: [],
  Conv: [], ConvTranspose: [], ConvInteger: [], MatMul: [], MatMulInteger: [], QLinearConv: [], QLinearMatMul: [],
  QuantizeLinear: [], DequantizeLinear: [], DynamicQuantizeLinear: [],
  MaxPool: [], AveragePool: [], GlobalAveragePool: [], GlobalMaxPool: [], LpPool: [2], GlobalLpPool: [2],
  LRN: [], LayerNormalization: [], MeanVarianceNormalization: [], LpNormalization: [], GroupNormalization: [21],
  // BatchNormalization: spatial (7, removed at 9), training outputs (14)
  BatchNormalization: [6, 7, 9, 14],
  Dropout: [6, 7, 10, 12],
  Reshape: [5], Concat: [4], Tile: [6], Cast: [6], Slice: [10], TopK: [10],
  Squeeze: [13], Unsqueeze: [13], Split: [2, 13, 18], Pad: [2, 11], Clip: [6, 11],
  Softmax: [13], LogSoftmax: [13], Hardmax: [13],
  ReduceSum: [13], ReduceMean: [18], ReduceMax: [18], ReduceMin: [18], ReduceProd: [18], ReduceL1: [18], ReduceL2: [18],
  ReduceLogSum: [18], ReduceLogSumExp: [18], ReduceSumSquare: [18],
  Resize: [11, 13, 18, 19],
  // Upsample: scales became an input at 9; deprecated at 10 for Resize, which says the same with explicit modes
  Upsample: [7, 9, 10],
};

/** What an upgrader sees: the node, the graph, the model's opset before the raise and the target. */
interface Step {
  node: Node;
  g: Graph;
  from: number;
  to: number;
  /** Whether the op changed at `v` between `from` and `to`. */
  crosses: (v: number) => boolean;
  /** A value's rank, stated or inferred (on a copy: the model itself is not annotated). */
  rank: (v: Value | null | undefined) => number | undefined;
}

/** An op's rewrite: `check` says why the node cannot be raised (undefined: it can), `apply` rewrites it. */
interface Upgrader {
  check?: (s: Step) => string | undefined;
  apply: (s: Step) => void;
}

const int64s = (g: Graph, base: string, values: readonly number[]): Value => g.addInitializer(g.uniqueName(base), Tensor.from('int64', [values.length], values.map((v) => BigInt(v))));

/** Detaches a node's outputs after the first (training outputs, Dropout's mask) once checked unread. */
function keepFirstOutput(node: Node): void {
  while (node.outputs.length > 1) {
    const v = node.outputs.pop();
    if (v) v.producer = undefined;
  }
}

/** Drops attributes that later opsets removed. */
function drop(node: Node, ...names: string[]): void {
  for (const n of names) node.attributes.delete(n);
}

/** An attribute of ints that became an int64 input at `index` (Reshape's shape, Squeeze's axes, Slice's starts, …). */
function intsToInput(s: Step, name: string, index: number): void {
  const a = s.node.getAttr(name);
  s.node.attributes.delete(name);
  if (!a) return;
  const values = a.type === 'ints' ? a.value : a.type === 'int' ? [a.value] : [];
  while (s.node.inputs.length < index) s.node.setInput(s.node.inputs.length, null);
  s.node.setInput(index, int64s(s.g, `${s.node.name || s.node.opType}_${name}`, values));
}

/** Legacy elementwise broadcasting (before opset 7): `broadcast: 1` aligned B to A at `axis` (default: trailing). */
const legacyBroadcast: Upgrader = {
  check: (s) => {
    if (!s.crosses(7) || s.node.getInt('broadcast', 0) === 0 || !s.node.getAttr('axis')) return undefined;
    const ra = s.rank(s.node.inputs[0]), rb = s.rank(s.node.inputs[1]);
    if (ra === undefined || rb === undefined) return `${s.node} broadcasts at an axis and the ranks of its inputs are unknown`;
    return undefined;
  },
  apply: (s) => {
    const { node, g } = s;
    if (s.crosses(7) && node.getInt('broadcast', 0) !== 0 && node.getAttr('axis')) {
      const ra = s.rank(node.inputs[0])!, rb = s.rank(node.inputs[1])!;
      const axis = node.getInt('axis');
      const trailing = ra - ((axis < 0 ? axis + ra : axis) + rb);
      // numpy broadcasting aligns trailing dimensions: append the ones the legacy axis implied
      if (trailing > 0) {
        const b = node.inputs[1]!;
        const axes = Array.from({ length: trailing }, (_, i) => rb + i);
        const u = g.addNode({ opType: 'Unsqueeze', inputs: [b, int64s(g, `${node.name || node.opType}_axes`, axes)], outputs: [g.uniqueName(`${b.name}_aligned`)], before: node });
        node.setInput(1, u.output());
      }
    }
    drop(node, 'broadcast', 'axis', 'consumed_inputs');
  },
};

/** Only removed attributes (consumed_inputs at 6, is_test at 7, …): the op means the same without them. */
const attributesOnly = (...names: string[]): Upgrader => ({ apply: (s) => drop(s.node, 'consumed_inputs', ...names) });

/** Softmax, LogSoftmax, Hardmax: before 13 the input was flattened to 2-D at `axis` (default 1). */
const flattening: Upgrader = {
  apply: (s) => {
    const { node, g } = s;
    if (!s.crosses(13)) return;
    const axis = node.getInt('axis', 1);
    const r = s.rank(node.inputs[0]);
    if (r !== undefined && (axis === r - 1 || axis === -1)) {
      node.setAttr('axis', attr.int(-1));
      return;
    }
    // the old meaning, spelled out: Flatten at axis, the op along the last axis, back to the input's shape
    const x = node.inputs[0]!;
    const base = node.name || node.opType;
    const flat = g.addNode({ opType: 'Flatten', inputs: [x], outputs: [g.uniqueName(`${base}_2d`)], attributes: { axis: attr.int(axis) }, before: node });
    const op = g.addNode({ opType: node.opType, inputs: [flat.output()], outputs: [g.uniqueName(`${base}_2d_out`)], attributes: { axis: attr.int(-1) }, before: node });
    const shape = g.addNode({ opType: 'Shape', inputs: [x], outputs: [g.uniqueName(`${base}_shape`)], before: node });
    node.opType = 'Reshape';
    node.attributes.clear();
    node.setInputs([op.output(), shape.output()]);
  },
};

/**
 * Upgraders by op type. Each rewrites only for the versions it crosses; ops whose listed versions have no entry
 * here block the raise.
 */
const UPGRADERS: Record<string, Upgrader> = {
  Add: legacyBroadcast, Sub: legacyBroadcast, Mul: legacyBroadcast, Div: legacyBroadcast, Pow: legacyBroadcast,
  And: legacyBroadcast, Or: legacyBroadcast, Xor: legacyBroadcast, Equal: legacyBroadcast, Greater: legacyBroadcast, Less: legacyBroadcast,
  // Gemm 7 broadcasts C unidirectionally; a Gemm-6 C was already of a shape that does
  Gemm: attributesOnly('broadcast'),
  // Sum/Max/Min/Mean 8 broadcast; before, their inputs had equal shapes, which broadcasting leaves alone
  Sum: attributesOnly(), Max: attributesOnly(), Min: attributesOnly(), Mean: attributesOnly(),
  Abs: attributesOnly(), Ceil: attributesOnly(), Exp: attributesOnly(), Floor: attributesOnly(), Log: attributesOnly(), Neg: attributesOnly(),
  Reciprocal: attributesOnly(), Relu: attributesOnly(), Sigmoid: attributesOnly(), Sqrt: attributesOnly(), Tanh: attributesOnly(),
  Elu: attributesOnly(), HardSigmoid: attributesOnly(), LeakyRelu: attributesOnly(), Selu: attributesOnly(), InstanceNormalization: attributesOnly(),
  PRelu: {
    // PRelu 7 broadcasts the slope unidirectionally; a 1-element slope means the same either way
    check: (s) => {
      const slope = s.node.inputs[1];
      const n = constantOf(slope)?.size ?? (slope?.shape?.every((d) => typeof d === 'number') ? slope.shape.reduce<number>((a, d) => a * (d as number), 1) : undefined);
      return s.crosses(7) && n !== 1 && s.rank(slope) !== s.rank(s.node.inputs[0]) ? `${s.node}'s slope broadcast changed at opset 7` : undefined;
    },
    apply: (s) => drop(s.node, 'consumed_inputs'),
  },
  BatchNormalization: {
    check: (s) => {
      if (s.node.getInt('spatial', 1) !== 1) return `${s.node} normalizes per activation (spatial = 0), which opset 9 dropped`;
      if (s.node.outputs.slice(1).some((v) => v && (v.uses.length || v.isGraphOutput))) return `${s.node} uses its training outputs`;
      return undefined;
    },
    apply: (s) => {
      drop(s.node, 'consumed_inputs', 'is_test', 'spatial');
      // training outputs nobody reads are left off (their meaning changed at 14)
      keepFirstOutput(s.node);
    },
  },
  Dropout: {
    check: (s) => (s.node.outputs[1] && (s.node.outputs[1].uses.length || s.node.outputs[1].isGraphOutput) ? `${s.node}'s mask output is read` : undefined),
    // at inference Dropout passes its input through: an Identity, whatever the opset
    apply: (s) => {
      const { node } = s;
      node.opType = 'Identity';
      node.attributes.clear();
      node.setInputs([node.inputs[0]!]);
      keepFirstOutput(node);
    },
  },
  Reshape: { check: (s) => (s.crosses(5) && s.node.inputs.length < 2 && !s.node.getAttr('shape') ? `${s.node} has no shape` : undefined), apply: (s) => s.crosses(5) && s.node.inputs.length < 2 && intsToInput(s, 'shape', 1) },
  Concat: { apply: (s) => { if (!s.node.getAttr('axis')) s.node.setAttr('axis', attr.int(1)); } },
  Slice: {
    apply: (s) => {
      if (!s.crosses(10) || s.node.inputs.length > 1) return;
      intsToInput(s, 'starts', 1);
      intsToInput(s, 'ends', 2);
      intsToInput(s, 'axes', 3);
    },
  },
  TopK: { apply: (s) => s.crosses(10) && s.node.inputs.length < 2 && intsToInput(s, 'k', 1) },
  Squeeze: { apply: (s) => s.crosses(13) && intsToInput(s, 'axes', 1) },
  Unsqueeze: { apply: (s) => s.crosses(13) && intsToInput(s, 'axes', 1) },
  ReduceSum: { apply: (s) => s.crosses(13) && intsToInput(s, 'axes', 1) },
  Split: {
    check: (s) => (s.crosses(2) ? `${s.node} is from opset 1` : undefined),
    apply: (s) => s.crosses(13) && intsToInput(s, 'split', 1),
  },
  Pad: {
    check: (s) => {
      if (s.crosses(2)) return `${s.node} is from opset 1`;
      if (s.crosses(11) && s.node.inputs[0]?.elemType !== 'float32' && s.node.getFloat('value', 0) !== 0) return `${s.node} pads a non-float32 tensor with a constant`;
      return undefined;
    },
    apply: (s) => {
      if (!s.crosses(11) || s.node.inputs.length > 1) return;
      const { node, g } = s;
      const value = node.getFloat('value', 0);
      intsToInput(s, 'pads', 1);
      node.attributes.delete('value');
      if (value !== 0) node.setInput(2, g.addInitializer(g.uniqueName(`${node.name || 'Pad'}_value`), Tensor.from('float32', [], [value])));
    },
  },
  Clip: {
    check: (s) => (s.crosses(11) && s.node.inputs[0]?.elemType !== 'float32' && s.node.inputs[0]?.elemType !== undefined ? `${s.node} clips a ${s.node.inputs[0]?.elemType} tensor` : undefined),
    apply: (s) => {
      const { node, g } = s;
      drop(node, 'consumed_inputs');
      if (!s.crosses(11) || node.inputs.length > 1) return;
      const lo = node.getAttr('min'), hi = node.getAttr('max');
      node.attributes.delete('min');
      node.attributes.delete('max');
      const scalar = (a: typeof lo, which: string) => (a && a.type === 'float' ? g.addInitializer(g.uniqueName(`${node.name || 'Clip'}_${which}`), Tensor.from('float32', [], [a.value])) : null);
      const min = scalar(lo, 'min'), max = scalar(hi, 'max');
      if (max) node.setInputs([node.inputs[0]!, min, max]);
      else if (min) node.setInputs([node.inputs[0]!, min]);
    },
  },
  Softmax: flattening, LogSoftmax: flattening, Hardmax: flattening,
  Upsample: {
    check: (s) => {
      if (s.crosses(7)) return `${s.node} is from opset 1 (experimental)`;
      const mode = s.node.getString('mode', 'nearest');
      return mode !== 'nearest' && mode !== 'linear' ? `${s.node} has mode "${mode}"` : undefined;
    },
    // Upsample's coordinates were Resize's 'asymmetric', and its nearest neighbour the floor
    apply: (s) => {
      if (!s.crosses(10)) return;
      const { node, g } = s;
      const mode = node.getString('mode', 'nearest');
      const scales = node.getAttr('scales');
      const scalesInput = node.inputs[1] ?? (scales?.type === 'floats' ? g.addInitializer(g.uniqueName(`${node.name || 'Upsample'}_scales`), Tensor.from('float32', [scales.value.length], scales.value)) : null);
      node.opType = 'Resize';
      node.attributes.clear();
      node.setAttr('mode', attr.string(mode));
      node.setAttr('coordinate_transformation_mode', attr.string('asymmetric'));
      if (mode === 'nearest') node.setAttr('nearest_mode', attr.string('floor'));
      node.setInputs([node.inputs[0]!, null, scalesInput]);
    },
  },
};

/** Ranks of the main graph's values, inferred on a copy so that the model itself gains no annotations. */
function inferredRanks(model: Model): Map<string, number> {
  const copy = modelFromProto(decodeModelProto(encodeModel(model)));
  try {
    inferShapes(copy);
  } catch {
    // ranks stay unknown where inference stops; the upgraders that need them say so
  }
  const out = new Map<string, number>();
  for (const [name, v] of copy.graph.values) if (v.shape) out.set(name, v.shape.length);
  return out;
}

/** Why each op keeps the model from being raised from its opset to `target` (empty: it can be). */
export function upgradeBlockers(model: Model, target: number, ranks: Map<string, number> = inferredRanks(model)): string[] {
  const from = model.opset('') ?? 1;
  if (from >= target) return [];
  const blockers = new Map<string, string>();
  if (model.functions.length) blockers.set('(functions)', `${model.functions.length} model-local function(s)`);
  for (const node of model.graph.allNodes()) {
    if (!isOnnxDomain(node)) continue;
    const versions = OPSET_BREAKING_VERSIONS[node.opType];
    if (!versions || (node.subgraphs().length && node.graph === model.graph)) {
      if (!blockers.has(node.opType)) blockers.set(node.opType, `${node.opType} (its changes between opsets are not tabulated here)`);
      continue;
    }
    const changed = versions.filter((v) => v > from && v <= target);
    if (!changed.length) continue;
    if (node.graph !== model.graph) {
      blockers.set(node.opType, `${node.opType} in a subgraph (changed at opset ${changed.join(', ')})`);
      continue;
    }
    const up = UPGRADERS[node.opType];
    if (!up) {
      blockers.set(node.opType, `${node.opType} (changed at opset ${changed.join(', ')})`);
      continue;
    }
    const why = up.check?.(stepOf(node, from, target, ranks));
    if (why) blockers.set(`${node.opType}:${node.name}`, why);
  }
  return [...blockers.values()];
}

function stepOf(node: Node, from: number, to: number, ranks: Map<string, number>): Step {
  return { node, g: node.graph, from, to, crosses: (v) => v > from && v <= to, rank: (v) => (v ? (v.shape?.length ?? ranks.get(v.name)) : undefined) };
}

/**
 * Raises the model's default-domain opset to `target` in place, rewriting the nodes whose op changed on the way
 * (see the file comment). Throws a PassError listing what blocks it, before changing anything. Returns the ops
 * rewritten (by type, with counts) for reports.
 *
 * @example
 * ```ts
 * upgradeOpset(model, 13); // { from: 9, to: 13, rewritten: { Softmax: 1, BatchNormalization: 2 } }
 * ```
 */
export function upgradeOpset(model: Model, target: number): { from: number; to: number; rewritten: Record<string, number> } {
  const r = tryUpgrade(model, target);
  if ('blockers' in r) throw new PassError(`Cannot raise the model's opset from ${r.from} to ${target}: ${r.blockers.join('; ')}`);
  return r;
}

/**
 * Makes sure the model imports at least `min` for the default domain: raises it in place when it is lower
 * (`upgradeOpset`) and notes what was done. Returns undefined when the opset is (now) high enough, or the reason it
 * was not raised (the model is then unchanged); `allowed: false` refuses any raise.
 *
 * @example
 * ```ts
 * const why = ensureOpset(model, 13, notes); // undefined: the model is at opset ≥ 13 now
 * ```
 */
export function ensureOpset(model: Model, min: number, notes: string[], allowed = true): string | undefined {
  const from = model.opset('') ?? 1;
  if (from >= min) return undefined;
  if (!allowed) return `the model's opset is ${from} and raising it was turned off (raiseOpset: false)`;
  const r = tryUpgrade(model, min);
  if ('blockers' in r) return `the model's opset is ${from}, and raising it to ${min} could change ${r.blockers.join(', ')}`;
  const ops = Object.entries(r.rewritten).map(([op, n]) => `${op} ×${n}`).join(', ');
  notes.push(`raised the default-domain opset from ${from} to ${min}${ops ? ` (rewrote ${ops} to mean the same there)` : ' (every op in the model means the same there)'}`);
  return undefined;
}

/** The raise itself: the blockers (model unchanged), or the model raised and the ops rewritten. Ranks are inferred once. */
function tryUpgrade(model: Model, target: number): { from: number; blockers: string[] } | { from: number; to: number; rewritten: Record<string, number> } {
  const from = model.opset('') ?? 1;
  if (from >= target) return { from, to: from, rewritten: {} };
  const ranks = inferredRanks(model);
  const blockers = upgradeBlockers(model, target, ranks);
  if (blockers.length) return { from, blockers };
  const rewritten: Record<string, number> = {};
  for (const node of [...model.graph.nodes]) {
    if (!isOnnxDomain(node)) continue;
    const versions = OPSET_BREAKING_VERSIONS[node.opType] ?? [];
    if (!versions.some((v) => v > from && v <= target)) continue;
    const before = node.opType;
    UPGRADERS[node.opType]!.apply(stepOf(node, from, target, ranks));
    rewritten[before] = (rewritten[before] ?? 0) + 1;
  }
  model.graph.sort();
  const key = model.opsetImports.has('') || !model.opsetImports.has('ai.onnx') ? '' : 'ai.onnx';
  model.opsetImports.set(key, target);
  const ir = irVersionFor(target);
  if (model.irVersion < 4 && ir >= 4) {
    // before IR 4 every initializer had to be listed as a graph input and was a constant all the same; from 4 a
    // listed initializer is only a default a caller may override, so the listing goes (the weights stay weights)
    const g = model.graph;
    g.inputs.splice(0, g.inputs.length, ...g.inputs.filter((v) => !v.initializer));
  }
  model.irVersion = Math.max(model.irVersion, ir);
  return { from, to: target, rewritten };
}

/** The lowest IR version that may import an opset (onnx/helper.py's VERSION_TABLE). */
export function irVersionFor(opset: number): number {
  if (opset >= 21) return 10;
  if (opset >= 19) return 9;
  if (opset >= 15) return 8;
  if (opset >= 13) return 7;
  if (opset >= 11) return 6;
  return opset >= 10 ? 5 : 3;
}
