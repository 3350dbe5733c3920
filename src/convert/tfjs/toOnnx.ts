/**
 * TensorFlow.js → ONNX, for graph models (a GraphDef in `model.json`) and layers models (a Keras config).
 *
 * Graph models: the nodes the outputs depend on are converted, each into one or a few ONNX ops (opset 13). TF
 * holds images as NHWC, ONNX convolutions want NCHW; as in the other direction, each TF tensor may be held as an
 * ONNX value in either order (`Held`), convolutions and pools produce NCHW, element-wise ops keep the order of
 * their input, and a Transpose appears only where a consumer needs the other order. So the entry and exit
 * Transposes that `onnxToTfjs` writes cancel against these, and a converted-and-back model has no extra ops
 * between its convolutions. Inputs read as constants (shapes, axes, paddings, weights) are evaluated here; a
 * `Shape → StridedSlice → ConcatV2` chain (a dynamic batch) evaluates to a shape with the batch unknown.
 *
 * Layers models are rewritten as the equivalent graph first (`layersToGraph`), so both share the op table.
 */
import { GraphError, LoadError } from '../../errors.js';
import { inferShapes } from '../../onnx/infer/index.js';
import { Model, attr, type Attr, type Dim, type Value } from '../../onnx/ir.js';
import { Tensor } from '../../onnx/tensor.js';
import {
  attrInts,
  attrNumber,
  attrStrings,
  decodeWeights,
  shapeDims,
  unb64,
  type DecodedWeight,
  type TfAttr,
  type TfGraphDef,
  type TfNode,
  type TfjsModelJson,
} from './format.js';
import { NCHW, NHWC, identity, isIdentity, transposeData, type Perm } from './layout.js';
import { layersToGraph } from './layers.js';

/** Options of `tfjsToOnnx`. */
export interface TfjsToOnnxOptions {
  /** Name used in error messages (default "model.json"). */
  source?: string;
  /** Name of the ONNX graph (default: the model's own, or "tfjs"). */
  graphName?: string;
}

class Unsupported extends Error {}

/** An ONNX value holding a TF tensor, in NHWC (TF's order) and/or NCHW (for rank-4 tensors). */
interface Held {
  nhwc?: Value;
  nchw?: Value;
  rank?: number;
  /** Known elements of a small int tensor (shapes), null where unknown. */
  ints?: (number | null)[];
}

const INT64_MAX = 9223372036854775807n;

class Builder {
  readonly model = new Model();
  readonly g = this.model.graph;
  readonly held = new Map<string, Held>();
  readonly nodes = new Map<string, TfNode>();
  /** How many node inputs (and graph outputs) read each node: fusing into a producer needs it to be read once. */
  readonly readers = new Map<string, number>();
  #inits = 0;

  constructor(
    readonly weights: Map<string, DecodedWeight>,
    readonly source: string,
  ) {
    this.model.irVersion = 8;
    this.model.opsetImports.set('', 13);
    this.model.producerName = 'onnxpress';
  }

  /** Names the graph's outputs will take: nothing else may take them first. */
  readonly reserved = new Set<string>();

  /** An unused value name based on `base`, keeping clear of the reserved output names. */
  name(base: string): string {
    return this.g.uniqueName(this.reserved.has(base) ? `${base}_0` : base);
  }

  add(opType: string, inputs: (Value | null)[], attributes: Record<string, Attr>, name: string): Value {
    const node = this.g.addNode({ opType, inputs, attributes, name: this.g.uniqueNodeName(name), outputs: [this.name(name)] });
    return node.output();
  }

  init(name: string, t: Tensor): Value {
    this.#inits++;
    return this.g.addInitializer(name, t);
  }

  i64(name: string, values: readonly (number | bigint)[], dims: number[] = [values.length]): Value {
    return this.init(name, Tensor.from('int64', dims, values.map((v) => BigInt(v))));
  }

  f32(name: string, values: ArrayLike<number>, dims: number[]): Value {
    return this.init(name, Tensor.from('float32', dims, values instanceof Float32Array ? values : Float32Array.from(values)));
  }

  /** The held record of a tensor reference (`node` or `node:0`), converting its producer first. */
  tensor(ref: string): Held {
    const [name, idx] = parseRef(ref);
    if (idx !== 0) throw new Unsupported(`output ${idx} of node "${name}" is read`);
    const have = this.held.get(name);
    if (have) return have;
    const n = this.nodes.get(name);
    if (!n) throw new LoadError(`${this.source}: a node reads "${ref}", which no node produces`);
    const conv = TFJS_TO_ONNX[n.op];
    if (!conv) throw new Unsupported(`op ${n.op} (node "${n.name}")`);
    let h: Held;
    try {
      h = conv(this, n);
    } catch (e) {
      if (e instanceof Unsupported && !e.message.includes(`node "`)) throw new Unsupported(`${n.op} node "${n.name}": ${e.message}`);
      throw e;
    }
    this.held.set(name, h);
    return h;
  }

  /** The tensor in TF's order (NHWC for images). */
  nhwc(ref: string | Held): Value {
    const h = typeof ref === 'string' ? this.tensor(ref) : ref;
    if (!h.nhwc) h.nhwc = this.add('Transpose', [h.nchw!], { perm: attr.ints([...NHWC]) }, `${h.nchw!.name}_nhwc`);
    return h.nhwc;
  }

  /** The tensor in ONNX's image order (NCHW); the tensor must be rank 4. */
  nchw(ref: string | Held): Value {
    const h = typeof ref === 'string' ? this.tensor(ref) : ref;
    if (!h.nchw) h.nchw = this.add('Transpose', [h.nhwc!], { perm: attr.ints([...NCHW]) }, `${h.nhwc!.name}_nchw`);
    return h.nchw;
  }

  /** A constant input's weight (a Const node, possibly behind Identity). */
  constant(ref: string): DecodedWeight | undefined {
    const [name] = parseRef(ref);
    const n = this.nodes.get(name);
    if (!n) return undefined;
    if (n.op === 'Identity' && n.input?.[0]) return this.constant(n.input[0]);
    if (n.op !== 'Const') return undefined;
    const w = this.weights.get(n.name);
    if (!w) throw new LoadError(`${this.source}: Const node "${n.name}" has no weight in the weights manifest`);
    return w;
  }

  /** Elements of a small int tensor read statically; null for elements known only at run time. */
  staticInts(ref: string): (number | null)[] | undefined {
    const [name] = parseRef(ref);
    const c = this.constant(ref);
    if (c) return Array.from(c.data);
    const n = this.nodes.get(name);
    if (!n) return undefined;
    const ins = n.input ?? [];
    if (n.op === 'Shape') {
      const r = this.rankOf(ins[0]!);
      return r === undefined ? undefined : new Array<null>(r).fill(null);
    }
    if (n.op === 'StridedSlice' || n.op === 'Slice') {
      const src = this.staticInts(ins[0]!);
      const begin = this.staticInts(ins[1]!);
      const end = this.staticInts(ins[2]!);
      if (!src || !begin || !end || begin.length !== 1) return undefined;
      const b = begin[0] ?? 0;
      const e = n.op === 'Slice' ? (end[0] === -1 ? src.length : b + (end[0] ?? 0)) : end[0] ?? src.length;
      return src.slice(b, e);
    }
    if (n.op === 'ConcatV2' || n.op === 'Pack') {
      const parts = (n.op === 'ConcatV2' ? ins.slice(0, -1) : ins).map((i) => this.staticInts(i));
      if (parts.some((p) => !p)) return undefined;
      return parts.flat() as (number | null)[];
    }
    return undefined;
  }

  rankOf(ref: string): number | undefined {
    const c = this.constant(ref);
    if (c) return c.shape.length;
    return this.tensor(ref).rank;
  }

  /** A constant as an ONNX initializer, in TF's order or permuted for an NCHW operand (broadcast-aligned). */
  constValue(ref: string, perm?: Perm): Value {
    const w = this.constant(ref)!;
    let dims = w.shape;
    let data = w.data;
    if (perm) {
      dims = [...new Array<number>(perm.length - dims.length).fill(1), ...dims];
      ({ data, dims } = transposeData(data, dims, perm));
    }
    const name = `${parseRef(ref)[0]}${perm ? '_nchw' : ''}`;
    return this.init(this.g.uniqueName(name), data instanceof Float32Array ? Tensor.from('float32', dims, data) : Tensor.from('int32', dims, data));
  }

  get initializerCount(): number {
    return this.#inits;
  }
}

function parseRef(ref: string): [string, number] {
  const s = ref.startsWith('^') ? ref.slice(1) : ref;
  const m = /^(.*):(\d+)$/.exec(s);
  return m ? [m[1]!, Number(m[2])] : [s, 0];
}

type Converter = (b: Builder, n: TfNode) => Held;

const ins = (n: TfNode): string[] => (n.input ?? []).filter((i) => !i.startsWith('^'));

function staticList(b: Builder, ref: string | undefined, what: string): number[] {
  if (!ref) throw new Unsupported(`${what} is missing`);
  const v = b.staticInts(ref);
  if (!v || v.some((x) => x === null)) throw new Unsupported(`${what} ("${ref}") must be constant`);
  return v as number[];
}

/** Ops that keep the layout: applied to whichever order the input is held in. */
function unary(opType: string, attrs: (n: TfNode) => Record<string, Attr> = () => ({})): Converter {
  return (b, n) => {
    const h = b.tensor(ins(n)[0]!);
    const out: Held = { rank: h.rank };
    if (h.nchw) out.nchw = b.add(opType, [h.nchw], attrs(n), n.name);
    else out.nhwc = b.add(opType, [h.nhwc!], attrs(n), n.name);
    return out;
  };
}

function clipTo(lo: number, hi: number): Converter {
  return (b, n) => {
    const h = b.tensor(ins(n)[0]!);
    const min = b.f32(b.name(`${n.name}_min`), [lo], []);
    const max = b.f32(b.name(`${n.name}_max`), [hi], []);
    const out: Held = { rank: h.rank };
    if (h.nchw) out.nchw = b.add('Clip', [h.nchw, min, max], {}, n.name);
    else out.nhwc = b.add('Clip', [h.nhwc!, min, max], {}, n.name);
    return out;
  };
}

const ClipByValue: Converter = (b, n) => {
  const [x, lo, hi] = ins(n);
  const l = b.constant(lo!);
  const u = b.constant(hi!);
  if (!l || !u || l.data.length !== 1 || u.data.length !== 1) throw new Unsupported('clip bounds must be scalar constants');
  return clipTo(l.data[0]!, u.data[0]!)(b, { ...n, input: [x!] });
};

/** Element-wise binary ops with numpy broadcasting (the same in TF and ONNX). */
function binary(opType: string): Converter {
  return (b, n) => {
    const refs = ins(n).slice(0, 2);
    const consts = refs.map((r) => b.constant(r));
    const held = refs.map((r, i) => (consts[i] ? undefined : b.tensor(r)));
    const dyn = held.filter((h): h is Held => !!h);
    // NCHW when every non-constant operand is rank 4, one is already NCHW, and constants are rank ≤ 4
    const nchw = dyn.length > 0 && dyn.every((h) => h.rank === 4) && dyn.some((h) => h.nchw) && consts.every((c) => !c || c.shape.length <= 4);
    const operands = refs.map((r, i) => {
      if (consts[i]) return b.constValue(r, nchw ? NCHW : undefined);
      return nchw ? b.nchw(held[i]!) : b.nhwc(held[i]!);
    });
    const rank = dyn.length && dyn.every((h) => h.rank !== undefined) ? Math.max(...dyn.map((h) => h.rank!), ...consts.map((c) => c?.shape.length ?? 0)) : undefined;
    const y = b.add(opType, operands, {}, n.name);
    return nchw ? { nchw: y, rank } : { nhwc: y, rank };
  };
}

/** TF "NHWC" bias on the last axis; in NCHW it broadcasts as [C, 1, 1]. */
const BiasAdd: Converter = (b, n) => {
  const [x, bias] = ins(n);
  const h = b.tensor(x!);
  const w = b.constant(bias!);
  if (unb64(n.attr?.data_format?.s) === 'NCHW') throw new Unsupported('data_format NCHW');
  const conv = h.nchw?.producer;
  const once = b.readers.get(parseRef(x!)[0]) === 1;
  if (once && h.nchw && w && conv?.opType === 'Conv' && conv.inputs.length === 2 && h.nchw.uses.length === 0 && !h.nchw.isGraphOutput && !h.nhwc) {
    conv.setInput(2, b.f32(b.name(`${n.name}_bias`), w.data, [w.data.length]));
    return h;
  }
  if (h.nchw && w) {
    const v = b.f32(b.name(`${n.name}_bias`), w.data, [w.data.length, 1, 1]);
    return { nchw: b.add('Add', [h.nchw, v], {}, n.name), rank: 4 };
  }
  // Gemm(A, B) + bias → Gemm(A, B, bias): the form exporters write
  const prev = h.nhwc?.producer;
  if (once && w && !h.nchw && prev?.opType === 'Gemm' && prev.inputs.length === 2 && h.nhwc!.uses.length === 0 && !h.nhwc!.isGraphOutput && h.rank === 2) {
    prev.setInput(2, b.constValue(bias!));
    return h;
  }
  const bv = w ? b.constValue(bias!) : b.nhwc(bias!);
  return { nhwc: b.add('Add', [b.nhwc(h), bv], {}, n.name), rank: h.rank };
};

function activation(b: Builder, x: Value, act: string, n: TfNode): Value {
  switch (act) {
    case '':
    case 'linear':
      return x;
    case 'relu':
      return b.add('Relu', [x], {}, `${n.name}_relu`);
    case 'relu6':
      return b.add('Clip', [x, b.f32(b.name(`${n.name}_min`), [0], []), b.f32(b.name(`${n.name}_max`), [6], [])], {}, `${n.name}_relu6`);
    case 'elu':
      return b.add('Elu', [x], {}, `${n.name}_elu`);
    case 'sigmoid':
      return b.add('Sigmoid', [x], {}, `${n.name}_sigmoid`);
    case 'tanh':
      return b.add('Tanh', [x], {}, `${n.name}_tanh`);
    case 'leakyrelu':
      return b.add('LeakyRelu', [x], { alpha: attr.float(attrNumber(n.attr?.leakyrelu_alpha, 0.2)) }, `${n.name}_leakyrelu`);
    default:
      throw new Unsupported(`fused activation "${act}"`);
  }
}

/** Fused ops of _FusedConv2D / _FusedMatMul: [BiasAdd, activation?]. */
function fusedOps(n: TfNode): { bias: boolean; act: string } {
  const ops = attrStrings(n.attr?.fused_ops).map((s) => s.toLowerCase());
  if (!ops.length) return { bias: false, act: '' };
  if (ops[0] === 'fusedbatchnorm') throw new Unsupported('fused batch norm');
  if (ops[0] === 'biasadd') return { bias: true, act: ops[1] ?? '' };
  return { bias: false, act: ops[0]! };
}

function convPads(n: TfNode): Record<string, Attr> {
  const padding = unb64(n.attr?.padding?.s);
  if (padding === 'VALID') return {};
  if (padding === 'SAME') return { auto_pad: attr.string('SAME_UPPER') };
  if (padding === 'EXPLICIT') {
    const p = attrInts(n.attr?.explicit_paddings);
    return { pads: attr.ints([p[2]!, p[4]!, p[3]!, p[5]!]) };
  }
  throw new Unsupported(`padding "${padding}"`);
}

function checkNhwc(n: TfNode): void {
  const f = unb64(n.attr?.data_format?.s) || 'NHWC';
  if (f !== 'NHWC') throw new Unsupported(`data_format ${f}`);
}

function conv(depthwise: boolean): Converter {
  return (b, n) => {
    checkNhwc(n);
    const [x, filter, ...args] = ins(n);
    const w = b.constant(filter!);
    if (!w || w.dtype !== 'float32') throw new Unsupported('the filter must be a float32 constant');
    const [kh, kw, ci, co] = w.shape as [number, number, number, number];
    let W: { data: Float32Array; dims: number[] };
    let group = 1;
    if (depthwise) {
      // [kh, kw, C, mult] → [C·mult, 1, kh, kw]: output channel c·mult + j
      const t = transposeData(w.data as Float32Array, w.shape, [2, 3, 0, 1]);
      W = { data: t.data, dims: [ci * co, 1, kh, kw] };
      group = ci;
    } else {
      W = transposeData(w.data as Float32Array, w.shape, [3, 2, 0, 1]);
    }
    const s = attrInts(n.attr?.strides, [1, 1, 1, 1]);
    const d = attrInts(n.attr?.dilations, [1, 1, 1, 1]);
    const inputs: Value[] = [b.nchw(x!), b.f32(b.name(`${n.name}_W`), W.data, W.dims)];
    const { bias, act } = n.op.startsWith('_Fused') || n.op.startsWith('Fused') ? fusedOps(n) : { bias: false, act: '' };
    if (act === 'prelu') throw new Unsupported('fused prelu');
    if (bias) {
      const bw = b.constant(args[0]!);
      if (!bw) throw new Unsupported('the bias must be constant');
      inputs.push(b.f32(b.name(`${n.name}_B`), bw.data, [bw.data.length]));
    }
    const y = b.add('Conv', inputs, { kernel_shape: attr.ints([kh, kw]), strides: attr.ints([s[1]!, s[2]!]), dilations: attr.ints([d[1]!, d[2]!]), group: attr.int(group), ...convPads(n) }, act ? `${n.name}_conv` : n.name);
    return { nchw: activation(b, y, act, n), rank: 4 };
  };
}

const Conv2DBackpropInput: Converter = (b, n) => {
  checkNhwc(n);
  const [outShape, filter, x] = ins(n);
  const w = b.constant(filter!);
  if (!w || w.dtype !== 'float32') throw new Unsupported('the filter must be a float32 constant');
  const shape = b.staticInts(outShape!);
  if (!shape || shape.length !== 4 || shape[1] === null || shape[2] === null) throw new Unsupported('the output shape must be known (up to the batch)');
  // TF filter [kh, kw, out, in] → ONNX ConvTranspose weight [in, out, kh, kw]
  const W = transposeData(w.data as Float32Array, w.shape, [3, 2, 0, 1]);
  const s = attrInts(n.attr?.strides, [1, 1, 1, 1]);
  const padding = unb64(n.attr?.padding?.s);
  const extra: Record<string, Attr> = padding === 'SAME' ? { auto_pad: attr.string('SAME_UPPER') } : padding === 'VALID' ? {} : (() => { throw new Unsupported(`padding "${padding}"`); })();
  const y = b.add('ConvTranspose', [b.nchw(x!), b.f32(b.name(`${n.name}_W`), W.data, W.dims)], { kernel_shape: attr.ints([w.shape[0]!, w.shape[1]!]), strides: attr.ints([s[1]!, s[2]!]), output_shape: attr.ints([shape[1]!, shape[2]!]), ...extra }, n.name);
  return { nchw: y, rank: 4 };
};

function poolOp(opType: 'MaxPool' | 'AveragePool'): Converter {
  return (b, n) => {
    checkNhwc(n);
    const k = attrInts(n.attr?.ksize);
    const s = attrInts(n.attr?.strides, [1, 1, 1, 1]);
    const y = b.add(opType, [b.nchw(ins(n)[0]!)], { kernel_shape: attr.ints([k[1]!, k[2]!]), strides: attr.ints([s[1]!, s[2]!]), ...convPads(n) }, n.name);
    return { nchw: y, rank: 4 };
  };
}

function matmul(fused: boolean): Converter {
  return (b, n) => {
    const [a, bb, ...args] = ins(n);
    const ta = n.attr?.transpose_a?.b === true;
    const tb = n.attr?.transpose_b?.b === true;
    const inputs: Value[] = [b.nhwc(a!), b.constant(bb!) ? b.constValue(bb!) : b.nhwc(bb!)];
    const { bias, act } = fused ? fusedOps(n) : { bias: false, act: '' };
    if (bias) inputs.push(b.constant(args[0]!) ? b.constValue(args[0]!) : b.nhwc(args[0]!));
    const y = b.add('Gemm', inputs, { transA: attr.int(ta ? 1 : 0), transB: attr.int(tb ? 1 : 0) }, act ? `${n.name}_gemm` : n.name);
    return { nhwc: activation(b, y, act, n), rank: 2 };
  };
}

const BatchMatMul: Converter = (b, n) => {
  if (n.attr?.adj_x?.b || n.attr?.adj_y?.b) throw new Unsupported('adj_x / adj_y');
  const [a, bb] = ins(n);
  const ra = b.rankOf(a!);
  const rb = b.rankOf(bb!);
  const y = b.add('MatMul', [b.nhwc(a!), b.constant(bb!) ? b.constValue(bb!) : b.nhwc(bb!)], {}, n.name);
  return { nhwc: y, rank: ra !== undefined && rb !== undefined ? Math.max(ra, rb) : undefined };
};

function reduce(opType: string): Converter {
  return (b, n) => {
    const [x, axisRef] = ins(n);
    const h = b.tensor(x!);
    const keep = n.attr?.keep_dims?.b === true;
    let axes = staticList(b, axisRef, 'the axes');
    const rank = h.rank;
    if (rank !== undefined) axes = axes.map((a) => (a < 0 ? a + rank : a));
    if (h.nchw && rank === 4) {
      const mapped = axes.map((a) => NHWC[a]!);
      const remaining = [0, 1, 2, 3].filter((i) => !axes.includes(i)).map((i) => NHWC[i]!);
      if (keep || remaining.every((v, i) => i === 0 || v > remaining[i - 1]!)) {
        const y = b.add(opType, [h.nchw], { axes: attr.ints(mapped), keepdims: attr.int(keep ? 1 : 0) }, n.name);
        return keep ? { nchw: y, rank: 4 } : { nhwc: y, rank: 4 - axes.length };
      }
    }
    const y = b.add(opType, [b.nhwc(h)], { axes: attr.ints(axes), keepdims: attr.int(keep ? 1 : 0) }, n.name);
    return { nhwc: y, rank: rank === undefined ? undefined : keep ? rank : rank - axes.length };
  };
}

const Reshape: Converter = (b, n) => {
  const [x, shapeRef] = ins(n);
  const shape = b.staticInts(shapeRef!);
  let target: Value;
  if (shape && shape.filter((v) => v === null).length <= 1 && !shape.includes(-1)) target = b.i64(b.name(`${n.name}_shape`), shape.map((v) => v ?? -1));
  else if (shape && shape.every((v) => v !== null)) target = b.i64(b.name(`${n.name}_shape`), shape as number[]);
  else target = b.add('Cast', [b.nhwc(shapeRef!)], { to: attr.int(7) }, `${n.name}_shape`);
  const y = b.add('Reshape', [b.nhwc(x!), target], {}, n.name);
  return { nhwc: y, rank: shape?.length };
};

const Squeeze: Converter = (b, n) => {
  const h = b.tensor(ins(n)[0]!);
  const axes = attrInts(n.attr?.squeeze_dims ?? n.attr?.axis);
  if (!axes.length) throw new Unsupported('squeezing all unit dims (no axes)');
  const y = b.add('Squeeze', [b.nhwc(h), b.i64(b.name(`${n.name}_axes`), axes)], {}, n.name);
  return { nhwc: y, rank: h.rank === undefined ? undefined : h.rank - axes.length };
};

const Transpose: Converter = (b, n) => {
  const [x, permRef] = ins(n);
  const perm = staticList(b, permRef, 'the permutation');
  const h = b.tensor(x!);
  if (h.nchw && perm.length === 4) {
    // out = transpose(nhwc, perm) = transpose(nchw, NHWC∘perm): the usual NCHW↔NHWC pair cancels
    const p = perm.map((q) => NHWC[q]!);
    if (isIdentity(p)) return { nhwc: h.nchw, rank: 4 };
    if (p.join() === NHWC.join()) return { nhwc: b.nhwc(h), rank: 4 };
    return { nhwc: b.add('Transpose', [h.nchw], { perm: attr.ints(p) }, n.name), rank: 4 };
  }
  if (isIdentity(perm)) return { nhwc: b.nhwc(h), rank: h.rank };
  // NCHW → NHWC (how onnxToTfjs takes images in): the result's NCHW form is the input itself
  if (perm.join() === NHWC.join()) return { nchw: b.nhwc(h), rank: 4 };
  return { nhwc: b.add('Transpose', [b.nhwc(h)], { perm: attr.ints(perm) }, n.name), rank: perm.length };
};

const ConcatV2: Converter = (b, n) => {
  const all = ins(n);
  const axisRef = all[all.length - 1]!;
  const parts = all.slice(0, -1);
  let axis = staticList(b, axisRef, 'the axis')[0]!;
  const held = parts.map((p) => (b.constant(p) ? undefined : b.tensor(p)));
  const dyn = held.filter((h): h is Held => !!h);
  const rank = dyn.find((h) => h.rank !== undefined)?.rank;
  if (axis < 0 && rank !== undefined) axis += rank;
  if (axis < 0) throw new Unsupported('a negative axis on a tensor of unknown rank');
  const nchw = rank === 4 && dyn.every((h) => h.rank === 4) && dyn.some((h) => h.nchw);
  const inputs = parts.map((p, i) => (held[i] ? (nchw ? b.nchw(held[i]!) : b.nhwc(held[i]!)) : b.constValue(p, nchw ? [0, 3, 1, 2] : undefined)));
  const y = b.add('Concat', inputs, { axis: attr.int(nchw ? NHWC[axis]! : axis) }, n.name);
  return nchw ? { nchw: y, rank } : { nhwc: y, rank };
};

function pad(mode: 'constant' | 'mirror'): Converter {
  return (b, n) => {
    const [x, padRef, valueRef] = ins(n);
    const h = b.tensor(x!);
    const p = staticList(b, padRef, 'the paddings');
    const rank = p.length / 2;
    let m = 'constant';
    if (mode === 'mirror') {
      const tfMode = unb64(n.attr?.mode?.s).toUpperCase();
      if (tfMode !== 'REFLECT') throw new Unsupported(`MirrorPad mode ${tfMode} (REFLECT converts)`);
      m = 'reflect';
    }
    const useNchw = !!h.nchw && rank === 4;
    const order = useNchw ? [0, 3, 1, 2] : identity(rank);
    const pads = [...order.map((a) => p[2 * a]!), ...order.map((a) => p[2 * a + 1]!)];
    const inputs: (Value | null)[] = [useNchw ? b.nchw(h) : b.nhwc(h), b.i64(b.name(`${n.name}_pads`), pads)];
    const value = n.op === 'PadV2' ? b.constant(valueRef!) : undefined;
    if (n.op === 'PadV2' && !value) throw new Unsupported('the pad value must be constant');
    if (value) inputs.push(b.f32(b.name(`${n.name}_value`), [value.data[0]!], []));
    const y = b.add('Pad', inputs, { mode: attr.string(m) }, n.name);
    return useNchw ? { nchw: y, rank } : { nhwc: y, rank };
  };
}

const Softmax: Converter = (b, n) => {
  const h = b.tensor(ins(n)[0]!);
  if (h.nchw && h.rank === 4) return { nchw: b.add('Softmax', [h.nchw], { axis: attr.int(1) }, n.name), rank: 4 };
  return { nhwc: b.add('Softmax', [b.nhwc(h)], { axis: attr.int(-1) }, n.name), rank: h.rank };
};

function resize(mode: 'linear' | 'nearest'): Converter {
  return (b, n) => {
    const [x, sizeRef] = ins(n);
    const size = staticList(b, sizeRef, 'the size');
    const ac = n.attr?.align_corners?.b === true;
    const hp = n.attr?.half_pixel_centers?.b === true;
    if (ac && hp) throw new Unsupported('align_corners with half_pixel_centers');
    const xin = b.nchw(x!);
    // sizes = [N, C] of the input (read at run time) ++ [H, W]
    const shp = b.add('Shape', [xin], {}, `${n.name}_shape`);
    const nc = b.add('Slice', [shp, b.i64(b.name(`${n.name}_s0`), [0]), b.i64(b.name(`${n.name}_s1`), [2])], {}, `${n.name}_nc`);
    const sizes = b.add('Concat', [nc, b.i64(b.name(`${n.name}_hw`), size)], { axis: attr.int(0) }, `${n.name}_sizes`);
    const attrs: Record<string, Attr> = { mode: attr.string(mode) };
    if (mode === 'linear') attrs.coordinate_transformation_mode = attr.string(ac ? 'align_corners' : hp ? 'half_pixel' : 'asymmetric');
    else if (ac) Object.assign(attrs, { coordinate_transformation_mode: attr.string('align_corners'), nearest_mode: attr.string('round_prefer_ceil') });
    else Object.assign(attrs, { coordinate_transformation_mode: attr.string(hp ? 'tf_half_pixel_for_nn' : 'asymmetric'), nearest_mode: attr.string('floor') });
    const y = b.add('Resize', [xin, null, null, sizes], attrs, n.name);
    return { nchw: y, rank: 4 };
  };
}

const SliceOp: Converter = (b, n) => {
  const [x, beginRef, sizeRef] = ins(n);
  const begin = staticList(b, beginRef, 'begin');
  const size = staticList(b, sizeRef, 'size');
  const h = b.tensor(x!);
  const useNchw = !!h.nchw && begin.length === 4;
  const order = useNchw ? [0, 3, 1, 2] : identity(begin.length);
  const starts = order.map((a) => begin[a]!);
  const ends = order.map((a) => (size[a] === -1 ? INT64_MAX : BigInt(begin[a]! + size[a]!)));
  const y = b.add('Slice', [useNchw ? b.nchw(h) : b.nhwc(h), b.i64(b.name(`${n.name}_starts`), starts), b.i64(b.name(`${n.name}_ends`), ends), b.i64(b.name(`${n.name}_axes`), order.map((_, i) => i))], {}, n.name);
  return useNchw ? { nchw: y, rank: 4 } : { nhwc: y, rank: h.rank };
};

const StridedSlice: Converter = (b, n) => {
  for (const m of ['ellipsis_mask', 'new_axis_mask', 'shrink_axis_mask']) if (attrNumber(n.attr?.[m], 0) !== 0) throw new Unsupported(`${m}`);
  const [x, beginRef, endRef, stridesRef] = ins(n);
  const begin = staticList(b, beginRef, 'begin');
  const end = staticList(b, endRef, 'end');
  const strides = staticList(b, stridesRef, 'strides');
  const bm = attrNumber(n.attr?.begin_mask, 0);
  const em = attrNumber(n.attr?.end_mask, 0);
  const starts = begin.map((v, i) => (bm & (1 << i) ? (strides[i]! > 0 ? 0n : INT64_MAX) : BigInt(v)));
  const ends = end.map((v, i) => (em & (1 << i) ? (strides[i]! > 0 ? INT64_MAX : -INT64_MAX) : BigInt(v)));
  const h = b.tensor(x!);
  const y = b.add('Slice', [b.nhwc(h), b.i64(b.name(`${n.name}_starts`), starts), b.i64(b.name(`${n.name}_ends`), ends), b.i64(b.name(`${n.name}_axes`), begin.map((_, i) => i)), b.i64(b.name(`${n.name}_steps`), strides)], {}, n.name);
  return { nhwc: y, rank: h.rank };
};

const ShapeOp: Converter = (b, n) => {
  const h = b.tensor(ins(n)[0]!);
  const s = b.add('Shape', [b.nhwc(h)], {}, `${n.name}_i64`);
  return { nhwc: b.add('Cast', [s], { to: attr.int(6) }, n.name), rank: 1 };
};

const FusedBatchNorm: Converter = (b, n) => {
  checkNhwc(n);
  const [x, ...rest] = ins(n);
  const ws = rest.slice(0, 4).map((r) => b.constant(r));
  if (ws.some((w) => !w)) throw new Unsupported('scale, offset, mean and variance must be constants');
  const h = b.tensor(x!);
  const vals = ws.map((w, i) => b.f32(b.name(`${n.name}_${['scale', 'B', 'mean', 'var'][i]}`), w!.data, [w!.data.length]));
  const y = b.add('BatchNormalization', [b.nchw(h), ...vals], { epsilon: attr.float(attrNumber(n.attr?.epsilon, 0.001)) }, n.name);
  return { nchw: y, rank: 4 };
};

const Prelu: Converter = (b, n) => {
  const [x, alpha] = ins(n);
  const h = b.tensor(x!);
  return { nhwc: b.add('PRelu', [b.nhwc(h), b.constant(alpha!) ? b.constValue(alpha!) : b.nhwc(alpha!)], {}, n.name), rank: h.rank };
};

const Identity: Converter = (b, n) => {
  const r = ins(n)[0]!;
  if (b.constant(r)) return { nhwc: b.constValue(r), rank: b.constant(r)!.shape.length };
  return b.tensor(r);
};

const Const: Converter = (b, n) => ({ nhwc: b.constValue(n.name), rank: b.constant(n.name)!.shape.length });

const Rsqrt: Converter = (b, n) => {
  const h = b.tensor(ins(n)[0]!);
  const s = b.add('Sqrt', [h.nchw ?? h.nhwc!], {}, `${n.name}_sqrt`);
  const y = b.add('Reciprocal', [s], {}, n.name);
  return h.nchw ? { nchw: y, rank: h.rank } : { nhwc: y, rank: h.rank };
};

const Square: Converter = (b, n) => {
  const h = b.tensor(ins(n)[0]!);
  const x = h.nchw ?? h.nhwc!;
  const y = b.add('Mul', [x, x], {}, n.name);
  return h.nchw ? { nchw: y, rank: h.rank } : { nhwc: y, rank: h.rank };
};

/** Every TF op that converts, in one table. */
export const TFJS_TO_ONNX: Readonly<Record<string, Converter>> = {
  Const,
  Identity,
  Conv2D: conv(false),
  _FusedConv2D: conv(false),
  DepthwiseConv2dNative: conv(true),
  FusedDepthwiseConv2dNative: conv(true),
  Conv2DBackpropInput,
  MatMul: matmul(false),
  _FusedMatMul: matmul(true),
  BatchMatMulV2: BatchMatMul,
  BatchMatMul,
  BiasAdd,
  Add: binary('Add'),
  AddV2: binary('Add'),
  Sub: binary('Sub'),
  Mul: binary('Mul'),
  RealDiv: binary('Div'),
  Div: binary('Div'),
  Maximum: binary('Max'),
  Minimum: binary('Min'),
  Relu: unary('Relu'),
  Relu6: clipTo(0, 6),
  ClipByValue,
  LeakyRelu: unary('LeakyRelu', (n) => ({ alpha: attr.float(attrNumber(n.attr?.alpha, 0.2)) })),
  Sigmoid: unary('Sigmoid'),
  Tanh: unary('Tanh'),
  Elu: unary('Elu'),
  Selu: unary('Selu'),
  Neg: unary('Neg'),
  Abs: unary('Abs'),
  Exp: unary('Exp'),
  Log: unary('Log'),
  Sqrt: unary('Sqrt'),
  Rsqrt,
  Square,
  Prelu,
  Softmax,
  MaxPool: poolOp('MaxPool'),
  AvgPool: poolOp('AveragePool'),
  Mean: reduce('ReduceMean'),
  Max: reduce('ReduceMax'),
  Sum: reduce('ReduceSum'),
  Reshape,
  Squeeze,
  Transpose,
  ConcatV2,
  Pad: pad('constant'),
  PadV2: pad('constant'),
  MirrorPad: pad('mirror'),
  ResizeBilinear: resize('linear'),
  ResizeNearestNeighbor: resize('nearest'),
  Slice: SliceOp,
  StridedSlice,
  Shape: ShapeOp,
  /** Internal (from layers models): Keras Flatten, kept whole so that no static shape is needed. */
  Flatten: (b, n) => ({ nhwc: b.add('Flatten', [b.nhwc(ins(n)[0]!)], { axis: attr.int(1) }, n.name), rank: 2 }),
  FusedBatchNorm,
  FusedBatchNormV3: FusedBatchNorm,
};

const DTYPE: Record<string, 'float32' | 'int32'> = { DT_FLOAT: 'float32', DT_INT32: 'int32', DT_INT64: 'int32', DT_HALF: 'float32' };

function onnxDims(dims: number[] | undefined): Dim[] | undefined {
  return dims?.map((d, i) => (d >= 0 ? d : i === 0 ? 'batch' : `d${i}`));
}

/** The graph a model.json holds (a GraphDef, or a layers model rewritten as one). */
function graphOf(json: TfjsModelJson, source: string, weights: Map<string, DecodedWeight>): { graph: TfGraphDef; signature: TfjsModelJson['signature'] } {
  const topo = json.modelTopology as Record<string, unknown> | undefined;
  if (!topo || typeof topo !== 'object') throw new LoadError(`${source}: "modelTopology" is missing`);
  if (Array.isArray((topo as { node?: unknown }).node)) return { graph: topo as unknown as TfGraphDef, signature: json.signature };
  if (json.format === 'layers-model' || 'class_name' in topo || 'model_config' in topo) return layersToGraph(topo, weights, source);
  throw new LoadError(`${source}: modelTopology is neither a graph (a "node" list) nor a layers model (a "class_name")`);
}

/**
 * Converts a TensorFlow.js model (the parsed `model.json` and its weight bytes, every shard concatenated in
 * manifest order) to an ONNX model (opset 13) that onnxruntime runs. Graph models (from tfjs-converter or from
 * `onnxToTfjs`) and layers models (Sequential or functional) are read. Throws a LoadError for a malformed file
 * or short weights, and one GraphError listing every op that does not convert.
 *
 * @example
 * ```ts
 * const json = JSON.parse(await readFile('web/model.json', 'utf8'));
 * const model = tfjsToOnnx(json, await readFile('web/group1-shard1of1.bin'));
 * await saveModel(model, 'model.onnx');
 * ```
 */
export function tfjsToOnnx(modelJson: object, weights: Uint8Array, options: TfjsToOnnxOptions = {}): Model {
  try {
    return convert(modelJson, weights, options);
  } catch (e) {
    if (e instanceof Unsupported) throw new GraphError(`Cannot convert ${options.source ?? 'model.json'} to ONNX: ${e.message}`);
    throw e;
  }
}

function convert(modelJson: object, weights: Uint8Array, options: TfjsToOnnxOptions): Model {
  const source = options.source ?? 'model.json';
  const json = modelJson as TfjsModelJson;
  if (!json || typeof json !== 'object') throw new LoadError(`${source}: expected a JSON object`);
  if (!Array.isArray(json.weightsManifest)) throw new LoadError(`${source}: "weightsManifest" is missing or not a list`);
  const decoded = decodeWeights(json.weightsManifest, weights, source);
  const { graph, signature } = graphOf(json, source, decoded);
  const b = new Builder(decoded, source);
  b.g.name = options.graphName ?? 'tfjs';
  for (const n of graph.node) {
    if (!n || typeof n.name !== 'string' || typeof n.op !== 'string') throw new LoadError(`${source}: a node has no name or op: ${JSON.stringify(n).slice(0, 120)}`);
    if (b.nodes.has(n.name)) throw new LoadError(`${source}: node "${n.name}" is defined twice`);
    b.nodes.set(n.name, n);
  }
  for (const n of graph.node) for (const r of n.input ?? []) b.readers.set(parseRef(r)[0], (b.readers.get(parseRef(r)[0]) ?? 0) + 1);
  // inputs: the signature's, else every Placeholder
  const inputs: [string, string][] = signature?.inputs && Object.keys(signature.inputs).length ? Object.entries(signature.inputs).map(([k, v]) => [k, parseRef(v.name)[0]]) : graph.node.filter((n) => n.op === 'Placeholder').map((n) => [n.name, n.name]);
  for (const [key, nodeName] of inputs) {
    const n = b.nodes.get(nodeName);
    if (!n || n.op !== 'Placeholder') throw new LoadError(`${source}: input "${key}" names "${nodeName}", which is not a Placeholder node`);
    const dtype = DTYPE[n.attr?.dtype?.type ?? 'DT_FLOAT'];
    if (!dtype) throw new Unsupported(`input "${key}" has dtype ${n.attr?.dtype?.type}`);
    const v = b.g.declareValue(key);
    const dims = shapeDims(n.attr?.shape?.shape);
    v.type = { kind: 'tensor', elemType: dtype, shape: onnxDims(dims) };
    b.g.inputs.push(v);
    b.held.set(nodeName, { nhwc: v, rank: dims?.length });
  }
  // outputs: the signature's, else every node nothing reads (Consts aside)
  let outputs: [string, string][];
  if (signature?.outputs && Object.keys(signature.outputs).length) outputs = Object.entries(signature.outputs).map(([k, v]) => [k, v.name]);
  else {
    const read = new Set(graph.node.flatMap((n) => (n.input ?? []).map((r) => parseRef(r)[0])));
    outputs = graph.node.filter((n) => !read.has(n.name) && n.op !== 'Const' && n.op !== 'NoOp').map((n) => [n.name, n.name]);
  }
  for (const [key] of outputs) b.reserved.add(key);
  for (const [, r] of outputs) b.readers.set(parseRef(r)[0], (b.readers.get(parseRef(r)[0]) ?? 0) + 1);
  // unsupported ops: collect every one the outputs reach before converting anything
  const missing = new Map<string, string[]>();
  const seen = new Set<string>();
  const stack = outputs.map(([, r]) => parseRef(r)[0]);
  while (stack.length) {
    const name = stack.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const n = b.nodes.get(name);
    if (!n) continue;
    if (!TFJS_TO_ONNX[n.op] && n.op !== 'Placeholder') {
      if (!missing.has(n.op)) missing.set(n.op, []);
      missing.get(n.op)!.push(n.name);
    }
    for (const r of n.input ?? []) stack.push(parseRef(r)[0]);
  }
  if (missing.size) {
    throw new GraphError(`Cannot convert ${source} to ONNX: unsupported ops: ${[...missing].map(([op, ns]) => `${op} (node${ns.length > 1 ? 's' : ''} ${ns.slice(0, 6).map((x) => `"${x}"`).join(', ')}${ns.length > 6 ? `, … ${ns.length - 6} more` : ''})`).join(', ')}. Supported ops: ${Object.keys(TFJS_TO_ONNX).join(', ')}`);
  }
  {
    for (const [key, ref] of outputs) {
      const h = b.tensor(ref);
      let v = h.nhwc ?? b.nhwc(h);
      const free = !b.g.lookup(key) || b.g.lookup(key) === v;
      if (v.producer && !v.isGraphOutput && !v.isGraphInput && free) {
        b.reserved.delete(key);
        v.name = key;
      }
      else {
        b.reserved.delete(key);
        v = b.add('Identity', [v], {}, key);
      }
      if (!v.type) v.type = { kind: 'tensor', elemType: 'float32' };
      b.g.outputs.push(v);
    }
  }
  b.g.sort();
  inferShapes(b.model);
  return b.model;
}

