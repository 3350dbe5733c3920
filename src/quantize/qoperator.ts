/**
 * QOperator form: rewrites the QDQ groups of a quantized model into integer operators, in place. Rules, each
 * applied where the whole group matches (activation params per tensor, weights per tensor or per output channel,
 * zero points present), anywhere else the QDQ form stays (onnxruntime runs mixed models):
 *
 * 1. `Q(Conv(DQ(x), DQ(w), DQ(b)))` -> `QLinearConv(x, w, b)` (ONNX).
 * 2. `Q(MatMul(DQ(a), DQ(b)))` -> `QLinearMatMul(a, b)` (ONNX; b per tensor or per column).
 * 3. `[Q](Gemm(DQ(a), DQ(b), DQ(c)))` -> `QGemm(a, b, c)` (com.microsoft; float output without the Q).
 * 4. `Q(Add|Mul(DQ(a), DQ(b)))` -> `QLinearAdd|QLinearMul(a, b)` (com.microsoft).
 * 5. `Q(GlobalAveragePool|AveragePool|Sigmoid|LeakyRelu|Softmax(DQ(x)))` -> `QLinear…(x)` (com.microsoft).
 * 6. `Q(Concat(DQ(x1), …))` -> `QLinearConcat(x1, …)` (com.microsoft).
 * 7. `Q(op(DQ(x)))` with equal params, op moving values (MaxPool ≥ 12, Reshape, Transpose, Flatten, Squeeze,
 *    Unsqueeze, Resize, Gather, Slice, Expand, Tile) -> `op(x)` on the integers.
 * 8. `Q(Relu(y))` with zero point = the type's lowest code, `Q(Clip(y, lo, hi))` with the codes of lo and hi at or
 *    beyond the type's ends -> `Q(y)`: the Relu / Clip between an op of rules 1–5 and its Q disappears with it.
 * 9. `Q(DQ(x))` with equal params -> x.
 *
 * DequantizeLinear nodes and constants left unread are removed.
 */
import { constantOf, dropUnreadConstants, isOnnxDomain } from '../onnx/hygiene/constants.js';
import { attr, type Attr, type Graph, type Model, type Node, type Value } from '../onnx/ir.js';
import { Tensor } from '../onnx/tensor.js';
import { rint, typeRange, type QuantType } from './qdq.js';

const MS = 'com.microsoft';

/** What `toQOperator` did. */
export interface QOperatorResult {
  /** Rewritten groups per new op type (the drop rule counts under the op's own type). */
  converted: Record<string, number>;
  notes: string[];
}

/** A DequantizeLinear feeding a value. */
interface Dq {
  node: Node;
  x: Value;
  scale: Value;
  zp: Value | null;
  /** Number of scales (1: per tensor). */
  channels: number;
  axis: number;
}

function dqOf(v: Value | null | undefined): Dq | undefined {
  const n = v?.producer;
  if (!n || n.opType !== 'DequantizeLinear' || !isOnnxDomain(n)) return undefined;
  const scale = n.inputs[1];
  const s = constantOf(scale);
  if (!scale || !s || s.dtype !== 'float32') return undefined;
  const zp = n.inputs[2] ?? null;
  if (zp && !constantOf(zp)) return undefined;
  return { node: n, x: n.input(0), scale, zp, channels: s.size, axis: n.getInt('axis', 1) };
}

/** A per-tensor DQ with an 8-bit zero point. */
function activationDq(v: Value | null | undefined): (Dq & { type: QuantType }) | undefined {
  const d = dqOf(v);
  const t = constantOf(d?.zp);
  if (!d || d.channels !== 1 || !t || (t.dtype !== 'uint8' && t.dtype !== 'int8')) return undefined;
  return { ...d, type: t.dtype };
}

interface Qout {
  q: Node;
  scale: Value;
  zp: Value;
  out: Value;
  type: QuantType;
  /** The Relu / Clip between the op and the Q (rule 8), if any. */
  act?: Node;
}

/** The per-tensor Q that alone reads `y`, possibly behind a Relu / Clip it makes redundant (rule 8). */
function qAfter(y: Value, allowActivation = true): Qout | undefined {
  if (y.isGraphOutput || y.uses.length !== 1) return undefined;
  const { node, index } = y.uses[0]!;
  if (index !== 0 || !isOnnxDomain(node)) return undefined;
  if (node.opType === 'QuantizeLinear') {
    const scale = node.inputs[1];
    const zp = node.inputs[2];
    const s = constantOf(scale);
    const z = constantOf(zp);
    if (!scale || !zp || !s || !z || s.size !== 1 || z.size !== 1 || (z.dtype !== 'uint8' && z.dtype !== 'int8')) return undefined;
    return { q: node, scale, zp, out: node.output(0), type: z.dtype };
  }
  if (!allowActivation || (node.opType !== 'Relu' && node.opType !== 'Clip')) return undefined;
  const inner = qAfter(node.output(0), false);
  if (!inner || !redundant(node, inner)) return undefined;
  return { ...inner, act: node };
}

/** Rule 8: whether the Q's params make a Relu / Clip redundant (onnxruntime's IsClipMadeRedundantByQ). */
function redundant(act: Node, q: Qout): boolean {
  const scale = constantOf(q.scale)!.data<Float32Array>()[0]!;
  const zp = Number(constantOf(q.zp)!.data()[0]);
  const [qmin, qmax] = typeRange(q.type);
  if (act.opType === 'Relu') return zp === qmin;
  const bound = (i: number, attrName: string): number | undefined => {
    const opset = act.graph.root.model?.opset() ?? 13;
    if (opset < 11) return act.getFloat(attrName, NaN);
    const t = constantOf(act.inputs[i]);
    return t && t.dtype === 'float32' && t.size === 1 ? t.data<Float32Array>()[0] : undefined;
  };
  const lo = bound(1, 'min');
  const hi = bound(2, 'max');
  if (lo === undefined || hi === undefined || !Number.isFinite(lo) || !Number.isFinite(hi)) return false;
  return rint(Math.fround(lo / scale)) + zp <= qmin && rint(Math.fround(hi / scale)) + zp >= qmax;
}

function sameScalar(a: Value, b: Value): boolean {
  const x = constantOf(a);
  const y = constantOf(b);
  if (!x || !y || x.size !== 1 || y.size !== 1 || x.dtype !== y.dtype) return false;
  return x.bytes().every((v, i) => v === y.bytes()[i]);
}

/** Zero points of a DQ'd weight: its own, or zeros of the weight's type shaped like its scales. */
function weightZeroPoint(g: Graph, d: Dq, weight: Tensor): Value | undefined {
  if (d.zp) return d.zp;
  if (weight.dtype !== 'int8' && weight.dtype !== 'uint8') return undefined;
  const dims = d.channels > 1 ? [d.channels] : [];
  return g.addInitializer(`${d.x.name}_zero_point`, Tensor.from(weight.dtype, dims, weight.dtype === 'int8' ? new Int8Array(d.channels) : new Uint8Array(d.channels)));
}

/**
 * Replaces `target` (and the Relu / Clip and Q after it) by `spec`: the new node writes the value the Q wrote
 * (or, without a Q, the target's output), under the same names; DQs left unread go too.
 */
function replaceGroup(g: Graph, target: Node, q: Qout | undefined, spec: { opType: string; domain?: string; inputs: (Value | null)[]; attributes?: Record<string, Attr> }): void {
  const outValue = q ? q.out : target.output(0);
  const name = target.name;
  const outName = outValue.name;
  const dqs = target.inputs.map((v) => v?.producer).filter((n): n is Node => n?.opType === 'DequantizeLinear');
  const node = g.addNode({ ...spec, name: g.uniqueNodeName(`${name}_quant`), outputs: [g.uniqueName(`${outName}_quant`)], after: q?.q ?? target });
  node.output().type = outValue.type;
  outValue.replaceAllUsesWith(node.output());
  const removed = [q?.q, q?.act, target].filter((n): n is Node => !!n);
  const reads = removed.flatMap((n) => [...n.inputs]);
  for (const n of removed) g.removeNode(n);
  for (const d of new Set(dqs)) if (d.outputs.every((o) => !o || (!o.uses.length && !o.isGraphOutput))) g.removeNode(d);
  dropUnreadConstants([...reads, ...dqs.flatMap((d) => [...d.inputs])]);
  node.name = name;
  if (g.uniqueName(outName) === outName) node.output().name = outName;
}

const attrsOf = (n: Node, names: string[]): Record<string, Attr> => Object.fromEntries(names.filter((k) => n.attributes.has(k)).map((k) => [k, n.getAttr(k)!]));

type Rule = (g: Graph, n: Node, opset: number) => string | undefined;

/** Rule 1. */
const conv: Rule = (g, n) => {
  const x = activationDq(n.inputs[0]);
  const w = dqOf(n.inputs[1]);
  const wt = constantOf(w?.x);
  const b = n.inputs[2] ? dqOf(n.inputs[2]) : undefined;
  const q = qAfter(n.output(0));
  if (!x || !w || !wt || !q || x.type !== q.type || (n.inputs[2] && (!b || constantOf(b.x)?.dtype !== 'int32'))) return undefined;
  if (w.channels > 1 && w.axis !== 0 && w.axis !== -wt.dims.length) return undefined;
  const wzp = weightZeroPoint(g, w, wt);
  if (!wzp) return undefined;
  replaceGroup(g, n, q, {
    opType: 'QLinearConv',
    inputs: [x.x, x.scale, x.zp, w.x, w.scale, wzp, q.scale, q.zp, ...(b ? [b.x] : [])],
    attributes: attrsOf(n, ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides']),
  });
  return 'QLinearConv';
};

/** Rule 2. */
const matMul: Rule = (g, n) => {
  const a = activationDq(n.inputs[0]);
  const b = dqOf(n.inputs[1]);
  const bt = constantOf(b?.x);
  const q = qAfter(n.output(0));
  if (!a || !b || !q || a.type !== q.type) return undefined;
  const bRank = bt?.dims.length ?? n.input(1).shape?.length;
  if (b.channels > 1 && (bRank !== 2 || (b.axis !== 1 && b.axis !== -1))) return undefined;
  const bzp = b.zp ?? (bt ? weightZeroPoint(g, b, bt) : undefined);
  if (!bzp) return undefined;
  replaceGroup(g, n, q, { opType: 'QLinearMatMul', inputs: [a.x, a.scale, a.zp, b.x, b.scale, bzp, q.scale, q.zp] });
  return 'QLinearMatMul';
};

/** Rule 3. */
const gemm: Rule = (g, n) => {
  const a = activationDq(n.inputs[0]);
  const b = dqOf(n.inputs[1]);
  const bt = constantOf(b?.x);
  const c = n.inputs[2] ? dqOf(n.inputs[2]) : undefined;
  const y = n.output(0);
  const q = qAfter(y);
  if (!a || !b || !bt || (n.inputs[2] && (!c || constantOf(c.x)?.dtype !== 'int32' || n.getFloat('beta', 1) !== 1))) return undefined;
  if (q && a.type !== q.type) return undefined;
  // QGemm's per-column scales run along N: axis 0 of B when transB = 1, else axis 1
  const nAxis = n.getInt('transB', 0) ? 0 : 1;
  if (b.channels > 1 && b.axis !== nAxis && b.axis !== nAxis - 2) return undefined;
  const bzp = weightZeroPoint(g, b, bt);
  if (!bzp) return undefined;
  replaceGroup(g, n, q, {
    opType: 'QGemm',
    domain: MS,
    inputs: [a.x, a.scale, a.zp, b.x, b.scale, bzp, c ? c.x : null, ...(q ? [q.scale, q.zp] : [])],
    attributes: attrsOf(n, ['alpha', 'transA', 'transB']),
  });
  return 'QGemm';
};

/** Rule 4. */
const binary =
  (opType: string): Rule =>
  (g, n) => {
    const a = activationDq(n.inputs[0]);
    const b = activationDq(n.inputs[1]);
    const q = qAfter(n.output(0));
    if (!a || !b || !q || a.type !== q.type || b.type !== q.type) return undefined;
    replaceGroup(g, n, q, { opType, domain: MS, inputs: [a.x, a.scale, a.zp, b.x, b.scale, b.zp, q.scale, q.zp] });
    return opType;
  };

/** Rule 5. */
const unary =
  (opType: string, attributes: (n: Node, opset: number) => Record<string, Attr>, allowActivation = false): Rule =>
  (g, n, opset) => {
    const x = activationDq(n.inputs[0]);
    const q = qAfter(n.output(0), allowActivation);
    if (!x || !q || x.type !== q.type || n.outputs.length !== 1) return undefined;
    replaceGroup(g, n, q, { opType, domain: MS, inputs: [x.x, x.scale, x.zp, q.scale, q.zp], attributes: attributes(n, opset) });
    return opType;
  };

/** Rule 6. */
const concat: Rule = (g, n) => {
  const xs = n.inputs.map((v) => activationDq(v));
  const q = qAfter(n.output(0), false);
  if (!q || !xs.length || xs.some((x) => !x || x.type !== q.type)) return undefined;
  replaceGroup(g, n, q, { opType: 'QLinearConcat', domain: MS, inputs: [q.scale, q.zp, ...xs.flatMap((x) => [x!.x, x!.scale, x!.zp])], attributes: attrsOf(n, ['axis']) });
  return 'QLinearConcat';
};

/** Rule 7. */
const drop =
  (sinceOpset = 1): Rule =>
  (g, n, opset) => {
    if (opset < sinceOpset || n.outputs.length !== 1) return undefined;
    const x = activationDq(n.inputs[0]);
    const q = qAfter(n.output(0), false);
    if (!x || !q || x.type !== q.type || !sameScalar(x.scale, q.scale) || !sameScalar(x.zp!, q.zp)) return undefined;
    const outName = q.out.name;
    n.setInput(0, x.x); // Q(op(DQ(x))) -> op(x), equal params
    q.out.replaceAllUsesWith(n.output(0));
    g.removeNode(q.q);
    if (!x.node.output(0).uses.length && !x.node.output(0).isGraphOutput) g.removeNode(x.node);
    dropUnreadConstants([q.scale, q.zp, x.scale, x.zp]);
    n.output(0).type = q.out.type;
    if (g.uniqueName(outName) === outName) n.output(0).name = outName;
    return n.opType;
  };

const RULES: Readonly<Record<string, Rule>> = {
  Conv: conv,
  MatMul: matMul,
  Gemm: gemm,
  Add: binary('QLinearAdd'),
  Mul: binary('QLinearMul'),
  GlobalAveragePool: unary('QLinearGlobalAveragePool', () => ({ channels_last: attr.int(0) })),
  AveragePool: unary('QLinearAveragePool', (n) => ({ ...attrsOf(n, ['auto_pad', 'ceil_mode', 'count_include_pad', 'kernel_shape', 'pads', 'strides']), channels_last: attr.int(0) })),
  Sigmoid: unary('QLinearSigmoid', () => ({})),
  LeakyRelu: unary('QLinearLeakyRelu', (n) => attrsOf(n, ['alpha'])),
  Softmax: unary('QLinearSoftmax', (n, opset) => ({ axis: attr.int(n.getInt('axis', opset >= 13 ? -1 : 1)), opset: attr.int(opset) })),
  Concat: concat,
  MaxPool: drop(12),
  Reshape: drop(),
  Transpose: drop(),
  Flatten: drop(),
  Squeeze: drop(),
  Unsqueeze: drop(),
  Resize: drop(),
  Gather: drop(),
  Slice: drop(),
  Expand: drop(),
  Tile: drop(),
};

/** Rule 9: `Q(DQ(x))` with equal params -> x. */
function dropRequantize(g: Graph, q: Node): boolean {
  const x = activationDq(q.inputs[0]);
  const out = q.outputs[0];
  if (!x || !out || out.isGraphOutput || !q.inputs[2] || !sameScalar(x.scale, q.input(1)) || !sameScalar(x.zp!, q.input(2))) return false;
  out.replaceAllUsesWith(x.x);
  g.removeNode(q);
  if (!x.node.output(0).uses.length && !x.node.output(0).isGraphOutput) g.removeNode(x.node);
  return true;
}

/**
 * Rewrites the QDQ groups of `model`'s main graph into QOperator form, in place (rules at the top of this file).
 *
 * @example
 * ```ts
 * const { model: q } = quantizeStatic(model, ranges); // QDQ
 * toQOperator(q).converted; // { QLinearConv: 2, MaxPool: 2, Flatten: 1, QGemm: 2 }
 * ```
 */
export function toQOperator(model: Model): QOperatorResult {
  const g = model.graph;
  const opset = model.opset() ?? 1;
  const converted: Record<string, number> = {};
  const notes: string[] = [];
  const gone = new Set<Node>();
  for (const n of [...g.nodes]) {
    if (!g.nodes.includes(n) || gone.has(n) || !isOnnxDomain(n)) continue;
    if (n.opType === 'QuantizeLinear') {
      if (dropRequantize(g, n)) converted.QuantizeLinear = (converted.QuantizeLinear ?? 0) + 1;
      continue;
    }
    const rule = Object.hasOwn(RULES, n.opType) ? RULES[n.opType]! : undefined;
    const made = rule?.(g, n, opset);
    if (made) {
      converted[made] = (converted[made] ?? 0) + 1;
      gone.add(n);
    }
  }
  if (g.nodes.some((n) => n.domain === MS) && model.opset(MS) === undefined) model.opsetImports.set(MS, 1);
  g.sort();
  const left = g.nodes.filter((n) => n.opType === 'DequantizeLinear' && !constantOf(n.inputs[0])).length;
  notes.push(`QOperator form: ${Object.entries(converted).map(([k, v]) => `${k} ×${v}`).join(', ') || 'nothing converted'}${left ? `; ${left} DequantizeLinear left in front of float ops` : ''}`);
  return { converted, notes };
}
