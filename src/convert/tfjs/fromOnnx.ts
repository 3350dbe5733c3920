/**
 * ONNX → TensorFlow.js graph model.
 *
 * The ONNX graph is walked in order and every node becomes one or a few TF ops, spelled as tfjs-converter's op
 * tables spell them (Conv2D, DepthwiseConv2dNative, MatMul, BiasAdd, AddV2, MaxPool, AvgPool, Mean, ConcatV2,
 * ResizeBilinear…). TF's convolutions and pools want NHWC while ONNX is NCHW, so each value may be held in
 * several layouts (see `layout.ts`): convolutions ask for their input in NHWC and give NHWC, element-wise ops
 * keep whatever layout their input has, and shape-sensitive ops (Reshape, Flatten, Transpose) ask for the ONNX
 * order. A Transpose is emitted only where a consumer needs a layout the value is not yet held in, so a chain
 * Conv → BatchNorm → Relu → Conv stays NHWC, and the model's inputs and outputs keep their ONNX (NCHW) shapes.
 * Numerics are those of the ONNX ops: nothing is approximated (BatchNormalization becomes a multiply and an add
 * with folded constants; pads are explicit; average pools over padding are rescaled by exact window counts).
 *
 * Every node is checked before any is converted: unsupported ops and attribute combinations are reported together
 * in one GraphError that names each node.
 */
import { GraphError } from '../../errors.js';
import { foldConstants } from '../../onnx/hygiene/index.js';
import { inferShapes } from '../../onnx/infer/index.js';
import type { Dim, Model, Node, Value } from '../../onnx/ir.js';
import { decodeModelProto, encodeModel, modelFromProto } from '../../onnx/proto.js';
import { toFloat32 } from '../../onnx/codecs.js';
import type { Tensor } from '../../onnx/tensor.js';
import { SHARD_BYTES, shard, tfAttr, type TfAttr, type TfNode, type TfTensorInfo, type TfjsModelJson, type WeightSpec } from './format.js';
import { NHWC, between, identity, isIdentity, permKey, transposeData, type Perm } from './layout.js';

/** Options of `onnxToTfjs`. */
export interface OnnxToTfjsOptions {
  /** Largest weight shard in bytes (default 4 MiB, as tfjs-converter writes). */
  shardBytes?: number;
  /** Fold constant subgraphs with onnxruntime first (default true): PyTorch's Shape → Gather → Reshape chains. */
  foldConstants?: boolean;
}

/** What `onnxToTfjs` returns: the files of the model folder and notes on what the conversion did. */
export interface TfjsFiles {
  files: { path: string; data: Uint8Array }[];
  notes: string[];
}

/** A node, or an attribute combination of one, that cannot be converted. */
class Unsupported extends Error {}

const F32_LOWEST = -3.4028234663852886e38;

// ---------------------------------------------------------------------------------------------------------------
// the TF graph being written

class TfBuilder {
  readonly nodes: TfNode[] = [];
  readonly weights: { spec: WeightSpec; bytes: Uint8Array }[] = [];
  readonly #names = new Set<string>();

  /** A valid, unused TF node name from any string (TF names: [A-Za-z0-9.][A-Za-z0-9_./-]*; no ':' ). */
  name(base: string): string {
    let n = base.replace(/[^A-Za-z0-9_./-]/g, '_').replace(/^[^A-Za-z0-9.]+/, '');
    if (!n) n = 'node';
    let out = n;
    for (let i = 1; this.#names.has(out); i++) out = `${n}_${i}`;
    this.#names.add(out);
    return out;
  }

  op(op: string, inputs: string[], attr: Record<string, TfAttr>, base: string): string {
    const name = this.name(base);
    this.nodes.push({ name, op, input: inputs, attr });
    return name;
  }

  constF32(base: string, dims: readonly number[], data: ArrayLike<number>): string {
    const arr = data instanceof Float32Array ? data : Float32Array.from(data);
    return this.#const(base, 'float32', dims, new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
  }

  constI32(base: string, dims: readonly number[], data: ArrayLike<number>): string {
    const arr = data instanceof Int32Array ? data : Int32Array.from(data);
    return this.#const(base, 'int32', dims, new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
  }

  #const(base: string, dtype: 'float32' | 'int32', dims: readonly number[], bytes: Uint8Array): string {
    const name = this.name(base);
    const tfType = dtype === 'float32' ? 'DT_FLOAT' : 'DT_INT32';
    this.nodes.push({
      name,
      op: 'Const',
      attr: { value: { tensor: { dtype: tfType, tensorShape: { dim: dims.map((d) => ({ size: String(d) })) } } }, dtype: tfAttr.type(tfType) },
    });
    this.weights.push({ spec: { name, shape: [...dims], dtype }, bytes: bytes.slice() });
    return name;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// conversion context: layouts of ONNX values

class Ctx {
  readonly held = new Map<Value, Map<string, { name: string; perm: Perm }>>();
  readonly notes: string[] = [];

  constructor(
    readonly b: TfBuilder,
    readonly opset: number,
  ) {}

  constOf(v: Value | null | undefined): Tensor | undefined {
    return v?.initializer;
  }

  shape(v: Value): readonly Dim[] | undefined {
    const c = this.constOf(v);
    return c ? c.dims : v.shape;
  }

  rank(v: Value): number | undefined {
    return this.shape(v)?.length;
  }

  /** Static dims of a value (throws Unsupported naming what is unknown). */
  staticDims(v: Value, what: string): number[] {
    const s = this.shape(v);
    if (!s || s.some((d) => typeof d !== 'number')) throw new Unsupported(`${what} needs the static shape of "${v.name}" (known: ${s ? `[${s.join(', ')}]` : 'nothing'})`);
    return s as number[];
  }

  has(v: Value, p: Perm): boolean {
    return this.held.get(v)?.has(permKey(p)) ?? false;
  }

  /** The layout a value is already held in: NHWC when it is, else the first one (a layout-free op keeps it). */
  layoutOf(v: Value): Perm {
    if (this.constOf(v)) return identity(this.rank(v) ?? 0);
    const m = this.held.get(v);
    if (!m || m.size === 0) throw new GraphError(`internal: "${v.name}" was not converted`);
    if (m.has(permKey(NHWC))) return NHWC;
    return m.values().next().value!.perm;
  }

  set(v: Value, name: string, perm: Perm): void {
    if (!this.held.has(v)) this.held.set(v, new Map());
    this.held.get(v)!.set(permKey(perm), { name, perm });
  }

  /** The TF tensor holding `v` in layout `perm` (default: ONNX order), emitting a Const or Transpose as needed. */
  get(v: Value, perm?: Perm): string {
    const key = permKey(perm);
    const have = this.held.get(v)?.get(key);
    if (have) return have.name;
    const c = this.constOf(v);
    if (c) {
      const { data, dims } = constData(c, v.name);
      let d = dims;
      let arr = data;
      if (perm && !isIdentity(perm)) {
        // numpy broadcasting aligns trailing dims: pad to the layout's rank, then permute
        d = [...new Array<number>(perm.length - dims.length).fill(1), ...dims];
        ({ data: arr, dims: d } = transposeData(arr, d, perm));
      }
      const name = arr instanceof Float32Array ? this.b.constF32(v.name, d, arr) : this.b.constI32(v.name, d, arr);
      this.set(v, name, perm ?? identity(d.length));
      return name;
    }
    const m = this.held.get(v);
    if (!m || m.size === 0) throw new GraphError(`internal: "${v.name}" was not converted`);
    const from = m.values().next().value!;
    const target = perm ?? identity(from.perm.length);
    const p = between(from.perm, target);
    const name = this.b.op('Transpose', [from.name, this.b.constI32(`${v.name}/perm`, [p.length], p)], { T: tfAttr.type('DT_FLOAT') }, `${v.name}/${isIdentity(target) ? 'to_onnx' : 'to_nhwc'}`);
    this.set(v, name, target);
    return name;
  }

  /** Whether NHWC suits every non-constant rank-4 input (and there is at least one). */
  nhwcFits(inputs: readonly Value[]): boolean {
    const dyn = inputs.filter((v) => !this.constOf(v));
    return dyn.length > 0 && dyn.every((v) => this.rank(v) === 4) && dyn.some((v) => this.has(v, NHWC)) && inputs.every((v) => (this.rank(v) ?? 99) <= 4);
  }
}

/** Float32 or int32 data of an ONNX constant (int64 narrowed, refusing values beyond int32). */
function constData(t: Tensor, name: string): { data: Float32Array | Int32Array; dims: number[] } {
  const dims = [...t.dims];
  if (t.dtype === 'float32') return { data: t.data<Float32Array>(), dims };
  if (t.dtype === 'float16' || t.dtype === 'float64' || t.dtype === 'bfloat16') return { data: toFloat32(t.data(), t.dtype, t.size), dims };
  if (t.dtype === 'int64' || t.dtype === 'int32' || t.dtype === 'int8' || t.dtype === 'uint8' || t.dtype === 'int16' || t.dtype === 'uint16' || t.dtype === 'bool') {
    const nums = t.toNumbers();
    if (nums.some((x) => x > 2147483647 || x < -2147483648)) throw new Unsupported(`constant "${name}" holds ${t.dtype} values outside int32, which TensorFlow.js cannot hold`);
    return { data: Int32Array.from(nums), dims };
  }
  throw new Unsupported(`constant "${name}" is ${t.dtype}, which TensorFlow.js cannot hold`);
}

function ints(c: Ctx, v: Value | null | undefined, what: string): number[] | undefined {
  if (!v) return undefined;
  const t = c.constOf(v);
  if (!t) throw new Unsupported(`${what} ("${v.name}") must be a constant`);
  return t.toNumbers();
}

function floats(c: Ctx, v: Value | null | undefined): number[] | undefined {
  if (!v) return undefined;
  const t = c.constOf(v);
  if (!t) throw new Unsupported(`input "${v.name}" must be a constant`);
  return Array.from(constData(t, v.name).data);
}

function weightF32(c: Ctx, v: Value | null | undefined, what: string): { data: Float32Array; dims: number[] } {
  if (!v) throw new Unsupported(`${what} is missing`);
  const t = c.constOf(v);
  if (!t) throw new Unsupported(`${what} ("${v.name}") must be a constant (initializer or Constant node)`);
  const d = constData(t, v.name);
  if (!(d.data instanceof Float32Array)) throw new Unsupported(`${what} ("${v.name}") must be floating point, not ${t.dtype}`);
  return { data: d.data, dims: d.dims };
}

const T_FLOAT = { T: tfAttr.type('DT_FLOAT') };

// ---------------------------------------------------------------------------------------------------------------
// op handlers

type Handler = (c: Ctx, n: Node) => void;

/** Inputs read at conversion time (shapes, pads, weights), not as tensors: their producers need not convert. */
const STATIC_INPUTS: Readonly<Record<string, readonly number[]>> = {
  Reshape: [1], Resize: [1, 2, 3], Pad: [1, 2, 3], Clip: [1, 2], Conv: [1, 2], ConvTranspose: [1, 2], BatchNormalization: [1, 2, 3, 4],
};

function unary(tfOp: string, attrs: (n: Node) => Record<string, TfAttr> = () => ({})): Handler {
  return (c, n) => {
    const x = n.input(0);
    const p = c.layoutOf(x);
    c.set(n.output(), c.b.op(tfOp, [c.get(x, p)], { ...T_FLOAT, ...attrs(n) }, n.name || n.output().name), p);
  };
}

/** Same value, no op (Identity, Dropout at inference). */
const alias: Handler = (c, n) => {
  if (n.outputs[1]?.uses.length || n.outputs[1]?.isGraphOutput) throw new Unsupported('the mask output is used');
  const x = n.input(0);
  for (const h of c.held.get(x)?.values() ?? []) c.set(n.output(), h.name, h.perm);
  if (c.constOf(x)) c.set(n.output(), c.get(x), identity(c.rank(x) ?? 0));
};

function binary(tfOp: string): Handler {
  return (c, n) => {
    const [a, b] = [n.input(0), n.input(1)];
    const p = c.nhwcFits([a, b]) ? NHWC : undefined;
    const rank = Math.max(c.rank(a) ?? 0, c.rank(b) ?? 0);
    const y = c.b.op(tfOp, [c.get(a, p), c.get(b, p)], T_FLOAT, n.name || n.output().name);
    c.set(n.output(), y, p ?? identity(rank));
  };
}

/** Scalar Const helper. */
function scalar(c: Ctx, base: string, v: number): string {
  return c.b.constF32(base, [], [v]);
}

function clampOps(c: Ctx, x: string, lo: number | undefined, hi: number | undefined, base: string): string {
  let y = x;
  if (lo !== undefined && lo > -Infinity) y = c.b.op('Maximum', [y, scalar(c, `${base}/min`, lo)], T_FLOAT, `${base}/max`);
  if (hi !== undefined && hi < Infinity) y = c.b.op('Minimum', [y, scalar(c, `${base}/max`, hi)], T_FLOAT, `${base}/min`);
  return y;
}

const Clip: Handler = (c, n) => {
  let lo: number | undefined;
  let hi: number | undefined;
  if (c.opset < 11) {
    lo = n.getFloat('min', -Infinity);
    hi = n.getFloat('max', Infinity);
  } else {
    lo = floats(c, n.inputs[1])?.[0];
    hi = floats(c, n.inputs[2])?.[0];
  }
  const x = n.input(0);
  const p = c.layoutOf(x);
  const base = n.name || n.output().name;
  let y: string;
  if (lo === 0 && hi === 6) y = c.b.op('Relu6', [c.get(x, p)], T_FLOAT, base);
  else if (lo === 0 && (hi === undefined || hi === Infinity)) y = c.b.op('Relu', [c.get(x, p)], T_FLOAT, base);
  else y = clampOps(c, c.get(x, p), lo, hi, base);
  c.set(n.output(), y, p);
};

function hardSigmoid(c: Ctx, x: string, alpha: number, beta: number, base: string): string {
  const ax = c.b.op('Mul', [x, scalar(c, `${base}/alpha`, alpha)], T_FLOAT, `${base}/mul`);
  const axb = c.b.op('AddV2', [ax, scalar(c, `${base}/beta`, beta)], T_FLOAT, `${base}/add`);
  return clampOps(c, axb, 0, 1, base);
}

/** TF's Elu has α = 1: elu_α(x) = relu(x) + α·min(elu(x), 0). */
const Elu: Handler = (c, n) => {
  const alpha = n.getFloat('alpha', 1);
  if (alpha === 1) return unary('Elu')(c, n);
  const x = n.input(0);
  const p = c.layoutOf(x);
  const base = n.name || n.output().name;
  const xs = c.get(x, p);
  const neg = c.b.op('Minimum', [c.b.op('Elu', [xs], T_FLOAT, `${base}/elu`), scalar(c, `${base}/zero`, 0)], T_FLOAT, `${base}/neg`);
  const scaled = c.b.op('Mul', [neg, scalar(c, `${base}/alpha`, alpha)], T_FLOAT, `${base}/scaled`);
  c.set(n.output(), c.b.op('AddV2', [c.b.op('Relu', [xs], T_FLOAT, `${base}/relu`), scaled], T_FLOAT, base), p);
};

const HardSigmoid: Handler = (c, n) => {
  const x = n.input(0);
  const p = c.layoutOf(x);
  c.set(n.output(), hardSigmoid(c, c.get(x, p), n.getFloat('alpha', 0.2), n.getFloat('beta', 0.5), n.name || n.output().name), p);
};

const HardSwish: Handler = (c, n) => {
  const x = n.input(0);
  const p = c.layoutOf(x);
  const base = n.name || n.output().name;
  const xs = c.get(x, p);
  c.set(n.output(), c.b.op('Mul', [xs, hardSigmoid(c, xs, 1 / 6, 0.5, `${base}/hs`)], T_FLOAT, base), p);
};

/** [t, l, b, r] pads of a 2-D conv or pool (ONNX order is [x1_begin, x2_begin, x1_end, x2_end]). */
function pads2d(c: Ctx, n: Node, x: Value, k: number[], s: number[], d: number[]): number[] {
  const auto = n.getString('auto_pad', 'NOTSET');
  if (auto === 'NOTSET') {
    const p = n.getInts('pads', [0, 0, 0, 0]);
    if (p.length !== 4) throw new Unsupported(`pads ${JSON.stringify(p)} are not 2-D`);
    return p;
  }
  if (auto === 'VALID') return [0, 0, 0, 0];
  const dims = c.staticDims(x, `auto_pad ${auto}`);
  const out: number[] = [0, 0, 0, 0];
  for (let i = 0; i < 2; i++) {
    const inSize = dims[2 + i]!;
    const total = Math.max(0, (Math.ceil(inSize / s[i]!) - 1) * s[i]! + (k[i]! - 1) * d[i]! + 1 - inSize);
    const small = Math.floor(total / 2);
    out[i] = auto === 'SAME_UPPER' ? small : total - small;
    out[i + 2] = total - out[i]!;
  }
  return out;
}

function paddingAttrs(p: number[]): Record<string, TfAttr> {
  if (p.every((v) => v === 0)) return { padding: tfAttr.s('VALID') };
  return { padding: tfAttr.s('EXPLICIT'), explicit_paddings: tfAttr.ints([0, 0, p[0]!, p[2]!, p[1]!, p[3]!, 0, 0]) };
}

const Conv: Handler = (c, n) => {
  const x = n.input(0);
  const W = weightF32(c, n.inputs[1], 'the weight input');
  if (W.dims.length !== 4) throw new Unsupported(`${W.dims.length - 2}-D convolution (only 2-D converts)`);
  const [M, Cg, kh, kw] = W.dims as [number, number, number, number];
  const g = n.getInt('group', 1);
  const s = n.getInts('strides', [1, 1]);
  const d = n.getInts('dilations', [1, 1]);
  if (s.some((v) => v > 1) && d.some((v) => v > 1)) throw new Unsupported(`strides ${JSON.stringify(s)} with dilations ${JSON.stringify(d)} (TensorFlow.js needs one of them to be 1)`);
  const pads = pads2d(c, n, x, [kh, kw], s, d);
  const base = n.name || n.output().name;
  const xin = c.get(x, NHWC);
  const common = { ...T_FLOAT, strides: tfAttr.ints([1, s[0]!, s[1]!, 1]), dilations: tfAttr.ints([1, d[0]!, d[1]!, 1]), data_format: tfAttr.s('NHWC'), ...paddingAttrs(pads) };
  let y: string;
  if (g === 1) {
    const f = transposeData(W.data, W.dims, [2, 3, 1, 0]);
    y = c.b.op('Conv2D', [xin, c.b.constF32(`${base}/filter`, f.dims, f.data)], common, base);
  } else if (Cg === 1 && M % g === 0) {
    // depthwise: ONNX output channel m = c·mult + j reads input channel c; TF's filter is [kh, kw, C, mult]
    const f = transposeData(W.data, [g, M / g, kh, kw], [2, 3, 0, 1]);
    y = c.b.op('DepthwiseConv2dNative', [xin, c.b.constF32(`${base}/filter`, f.dims, f.data)], common, base);
  } else {
    // grouped: TensorFlow.js has no group attribute; convolve channel slices and concatenate
    const Mg = M / g;
    const parts: string[] = [];
    for (let gi = 0; gi < g; gi++) {
      const slice = c.b.op('Slice', [xin, c.b.constI32(`${base}/g${gi}/begin`, [4], [0, 0, 0, gi * Cg]), c.b.constI32(`${base}/g${gi}/size`, [4], [-1, -1, -1, Cg])], T_FLOAT, `${base}/g${gi}/slice`);
      const wg = W.data.subarray(gi * Mg * Cg * kh * kw, (gi + 1) * Mg * Cg * kh * kw);
      const f = transposeData(wg, [Mg, Cg, kh, kw], [2, 3, 1, 0]);
      parts.push(c.b.op('Conv2D', [slice, c.b.constF32(`${base}/g${gi}/filter`, f.dims, f.data)], common, `${base}/g${gi}`));
    }
    y = c.b.op('ConcatV2', [...parts, c.b.constI32(`${base}/axis`, [], [3])], { ...T_FLOAT, N: tfAttr.i(g) }, base);
  }
  if (n.inputs[2]) {
    const bias = weightF32(c, n.inputs[2], 'the bias input');
    y = c.b.op('BiasAdd', [y, c.b.constF32(`${base}/bias`, [M], bias.data)], { ...T_FLOAT, data_format: tfAttr.s('NHWC') }, `${base}/bias_add`);
  }
  c.set(n.output(), y, NHWC);
};

const ConvTranspose: Handler = (c, n) => {
  const x = n.input(0);
  const W = weightF32(c, n.inputs[1], 'the weight input');
  if (W.dims.length !== 4) throw new Unsupported(`${W.dims.length - 2}-D transposed convolution (only 2-D converts)`);
  const [, M, kh, kw] = W.dims as [number, number, number, number];
  if (n.getInt('group', 1) !== 1) throw new Unsupported('group > 1');
  const d = n.getInts('dilations', [1, 1]);
  if (d.some((v) => v !== 1)) throw new Unsupported(`dilations ${JSON.stringify(d)} (TensorFlow.js transposed convolutions have none)`);
  const s = n.getInts('strides', [1, 1]);
  const op = n.getInts('output_padding', [0, 0]);
  const dims = c.staticDims(x, 'ConvTranspose');
  const full = [0, 1].map((i) => (dims[2 + i]! - 1) * s[i]! + [kh, kw][i]!);
  let pads = n.getInts('pads', [0, 0, 0, 0]);
  const outShape = n.getAttr('output_shape') ? n.getInts('output_shape') : undefined;
  const auto = n.getString('auto_pad', 'NOTSET');
  if (outShape || auto === 'SAME_UPPER' || auto === 'SAME_LOWER') {
    const want = outShape ? outShape.slice(-2) : [0, 1].map((i) => dims[2 + i]! * s[i]!);
    pads = [0, 0, 0, 0];
    for (let i = 0; i < 2; i++) {
      const total = full[i]! + op[i]! - want[i]!;
      if (total < 0) throw new Unsupported(`output_shape ${JSON.stringify(outShape)} larger than the full output`);
      const upperFirst = auto === 'SAME_UPPER';
      pads[i] = upperFirst ? Math.floor(total / 2) : total - Math.floor(total / 2);
      pads[i + 2] = total - pads[i]!;
    }
  } else if (auto === 'VALID') pads = [0, 0, 0, 0];
  const base = n.name || n.output().name;
  const xin = c.get(x, NHWC);
  // TF's filter for the gradient of a conv from M to Cin channels: [kh, kw, M, Cin] (no flip)
  const f = transposeData(W.data, W.dims, [2, 3, 1, 0]);
  // output shape [N, H, W, M]: the batch is read at run time so that a dynamic batch works
  const shape = c.b.op('Shape', [xin], { ...T_FLOAT, out_type: tfAttr.type('DT_INT32') }, `${base}/shape`);
  const batch = c.b.op(
    'StridedSlice',
    [shape, c.b.constI32(`${base}/b0`, [1], [0]), c.b.constI32(`${base}/b1`, [1], [1]), c.b.constI32(`${base}/b2`, [1], [1])],
    { T: tfAttr.type('DT_INT32'), Index: tfAttr.type('DT_INT32'), begin_mask: tfAttr.i(0), end_mask: tfAttr.i(0), ellipsis_mask: tfAttr.i(0), new_axis_mask: tfAttr.i(0), shrink_axis_mask: tfAttr.i(0) },
    `${base}/batch`,
  );
  const outSize = c.b.op('ConcatV2', [batch, c.b.constI32(`${base}/hwc`, [3], [full[0]!, full[1]!, M]), c.b.constI32(`${base}/axis`, [], [0])], { T: tfAttr.type('DT_INT32'), N: tfAttr.i(2) }, `${base}/out_shape`);
  let y = c.b.op('Conv2DBackpropInput', [outSize, c.b.constF32(`${base}/filter`, f.dims, f.data), xin], { ...T_FLOAT, strides: tfAttr.ints([1, s[0]!, s[1]!, 1]), padding: tfAttr.s('VALID'), data_format: tfAttr.s('NHWC'), dilations: tfAttr.ints([1, 1, 1, 1]) }, base);
  // output_padding extends the end (zeros before the bias), pads crop: out = full⊕zeros(op) [begin : full+op-end]
  const extra = [0, 1].map((i) => Math.max(0, op[i]! - pads[i + 2]!));
  if (extra.some((e) => e > 0)) y = c.b.op('Pad', [y, c.b.constI32(`${base}/op`, [4, 2], [0, 0, 0, extra[0]!, 0, extra[1]!, 0, 0])], T_FLOAT, `${base}/output_padding`);
  const outHW = [0, 1].map((i) => full[i]! + op[i]! - pads[i]! - pads[i + 2]!);
  if (pads.some((p) => p !== 0)) {
    y = c.b.op('Slice', [y, c.b.constI32(`${base}/crop_begin`, [4], [0, pads[0]!, pads[1]!, 0]), c.b.constI32(`${base}/crop_size`, [4], [-1, outHW[0]!, outHW[1]!, -1])], T_FLOAT, `${base}/crop`);
  }
  if (n.inputs[2]) {
    const bias = weightF32(c, n.inputs[2], 'the bias input');
    y = c.b.op('BiasAdd', [y, c.b.constF32(`${base}/bias`, [M], bias.data)], { ...T_FLOAT, data_format: tfAttr.s('NHWC') }, `${base}/bias_add`);
  }
  c.set(n.output(), y, NHWC);
};

const MatMul: Handler = (c, n) => {
  const [a, b] = [n.input(0), n.input(1)];
  const ra = c.rank(a);
  const rb = c.rank(b);
  if (ra === undefined || rb === undefined) throw new Unsupported('operand ranks are unknown');
  if (ra < 2 || rb < 2) throw new Unsupported('1-D operands');
  const base = n.name || n.output().name;
  const y =
    ra === 2 && rb === 2
      ? c.b.op('MatMul', [c.get(a), c.get(b)], { ...T_FLOAT, transpose_a: tfAttr.b(false), transpose_b: tfAttr.b(false) }, base)
      : c.b.op('BatchMatMulV2', [c.get(a), c.get(b)], { ...T_FLOAT, adj_x: tfAttr.b(false), adj_y: tfAttr.b(false) }, base);
  c.set(n.output(), y, identity(Math.max(ra, rb)));
};

const Gemm: Handler = (c, n) => {
  const [a, b] = [n.input(0), n.input(1)];
  const transA = n.getInt('transA', 0) === 1;
  const transB = n.getInt('transB', 0) === 1;
  const alpha = n.getFloat('alpha', 1);
  const beta = n.getFloat('beta', 1);
  const base = n.name || n.output().name;
  let y: string;
  let N: number | undefined;
  const B = c.constOf(b) ? weightF32(c, b, 'B') : undefined;
  if (B) {
    // fold transB and alpha into the constant: y = A' · (alpha·B')
    const t = transB ? transposeData(B.data, B.dims, [1, 0]) : { data: B.data, dims: B.dims };
    const scaled = alpha === 1 ? t.data : Float32Array.from(t.data, (v) => v * alpha);
    N = t.dims[1];
    y = c.b.op('MatMul', [c.get(a), c.b.constF32(`${base}/B`, t.dims, scaled)], { ...T_FLOAT, transpose_a: tfAttr.b(transA), transpose_b: tfAttr.b(false) }, base);
  } else {
    y = c.b.op('MatMul', [c.get(a), c.get(b)], { ...T_FLOAT, transpose_a: tfAttr.b(transA), transpose_b: tfAttr.b(transB) }, base);
    if (alpha !== 1) y = c.b.op('Mul', [y, scalar(c, `${base}/alpha`, alpha)], T_FLOAT, `${base}/alpha_mul`);
  }
  const cv = n.inputs[2];
  if (cv && beta !== 0) {
    const C = c.constOf(cv) ? weightF32(c, cv, 'C') : undefined;
    if (C) {
      const data = beta === 1 ? C.data : Float32Array.from(C.data, (v) => v * beta);
      const isBias = C.dims.length === 1 || (C.dims.length === 2 && C.dims[0] === 1);
      if (isBias && (N === undefined || C.data.length === N)) {
        y = c.b.op('BiasAdd', [y, c.b.constF32(`${base}/bias`, [C.data.length], data)], { ...T_FLOAT, data_format: tfAttr.s('NHWC') }, `${base}/bias_add`);
      } else {
        y = c.b.op('AddV2', [y, c.b.constF32(`${base}/C`, C.dims, data)], T_FLOAT, `${base}/add`);
      }
    } else {
      let cs = c.get(cv);
      if (beta !== 1) cs = c.b.op('Mul', [cs, scalar(c, `${base}/beta`, beta)], T_FLOAT, `${base}/beta_mul`);
      y = c.b.op('AddV2', [y, cs], T_FLOAT, `${base}/add`);
    }
  }
  c.set(n.output(), y, [0, 1]);
};

const BatchNormalization: Handler = (c, n) => {
  if (n.getInt('training_mode', 0) !== 0) throw new Unsupported('training_mode');
  for (const o of n.outputs.slice(1)) if (o && (o.uses.length || o.isGraphOutput)) throw new Unsupported('the running statistics outputs are used');
  const x = n.input(0);
  const eps = n.getFloat('epsilon', 1e-5);
  const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => weightF32(c, n.inputs[i], `input ${i}`).data) as [Float32Array, Float32Array, Float32Array, Float32Array];
  const C = scale.length;
  // y = (x − mean)/√(var+ε)·scale + bias = x·f + (bias − mean·f), folded in float64
  const f = new Float32Array(C);
  const sh = new Float32Array(C);
  for (let i = 0; i < C; i++) {
    const fi = scale[i]! / Math.sqrt(variance[i]! + eps);
    f[i] = fi;
    sh[i] = bias[i]! - mean[i]! * fi;
  }
  const rank = c.rank(x);
  if (rank === undefined) throw new Unsupported('the input rank is unknown');
  const base = n.name || n.output().name;
  const p = rank === 4 ? NHWC : identity(rank);
  // the channel is ONNX dim 1: last in NHWC and for rank 2; otherwise broadcast as [C, 1, …]
  const cdims = rank === 4 || rank === 2 ? [C] : [C, ...new Array<number>(rank - 2).fill(1)];
  const mul = c.b.op('Mul', [c.get(x, p), c.b.constF32(`${base}/scale`, cdims, f)], T_FLOAT, `${base}/mul`);
  c.set(n.output(), c.b.op('AddV2', [mul, c.b.constF32(`${base}/shift`, cdims, sh)], T_FLOAT, base), p);
};

const Concat: Handler = (c, n) => {
  const ins = n.inputs.filter((v): v is Value => !!v);
  const rank = Math.max(...ins.map((v) => c.rank(v) ?? -1));
  if (rank < 0) throw new Unsupported('input ranks are unknown');
  let axis = n.getInt('axis');
  if (axis < 0) axis += rank;
  const p = c.nhwcFits(ins) ? NHWC : identity(rank);
  const tfAxis = p.indexOf(axis);
  const base = n.name || n.output().name;
  const y = c.b.op('ConcatV2', [...ins.map((v) => c.get(v, p)), c.b.constI32(`${base}/axis`, [], [tfAxis])], { ...T_FLOAT, N: tfAttr.i(ins.length) }, base);
  c.set(n.output(), y, p);
};

/** Output size and extra end padding of a pool window along one axis (ceil_mode as onnxruntime counts it). */
function poolAxis(inSize: number, k: number, s: number, pb: number, pe: number, ceil: boolean): { out: number; extra: number } {
  const span = inSize + pb + pe - k;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // a last window that would start in the end padding is dropped (PyTorch and onnxruntime)
  if (ceil && (out - 1) * s >= inSize + pb) out--;
  return { out, extra: Math.max(0, (out - 1) * s + k - (inSize + pb + pe)) };
}

function pool(kind: 'max' | 'avg'): Handler {
  return (c, n) => {
    const x = n.input(0);
    if (kind === 'max' && (n.outputs[1]?.uses.length || n.outputs[1]?.isGraphOutput)) throw new Unsupported('the Indices output is used');
    const k = n.getInts('kernel_shape');
    if (k.length !== 2) throw new Unsupported(`${k.length}-D pooling (only 2-D converts)`);
    const s = n.getInts('strides', [1, 1]);
    const d = n.getInts('dilations', [1, 1]);
    if (d.some((v) => v !== 1)) throw new Unsupported(`dilations ${JSON.stringify(d)}`);
    const pads = pads2d(c, n, x, k, s, d);
    const ceil = n.getInt('ceil_mode', 0) === 1;
    const base = n.name || n.output().name;
    let xin = c.get(x, NHWC);
    let extra = [0, 0];
    let outHW: number[] | undefined;
    const needsGeometry = ceil || pads.some((v) => v !== 0);
    if (needsGeometry) {
      const dims = c.staticDims(x, `${n.opType} with pads or ceil_mode`);
      const ax = [0, 1].map((i) => poolAxis(dims[2 + i]!, k[i]!, s[i]!, pads[i]!, pads[i + 2]!, ceil));
      extra = ax.map((a) => a.extra);
      outHW = ax.map((a) => a.out);
      const padding = [0, 0, pads[0]!, pads[2]! + extra[0]!, pads[1]!, pads[3]! + extra[1]!, 0, 0];
      if (padding.some((v) => v !== 0)) {
        const pc = c.b.constI32(`${base}/paddings`, [4, 2], padding);
        // max: pad with the lowest float so padding never wins; avg: zeros, rescaled below by true counts
        xin = kind === 'max' ? c.b.op('PadV2', [xin, pc, scalar(c, `${base}/lowest`, F32_LOWEST)], T_FLOAT, `${base}/pad`) : c.b.op('Pad', [xin, pc], T_FLOAT, `${base}/pad`);
      }
    }
    let y = c.b.op(kind === 'max' ? 'MaxPool' : 'AvgPool', [xin], { ...T_FLOAT, ksize: tfAttr.ints([1, k[0]!, k[1]!, 1]), strides: tfAttr.ints([1, s[0]!, s[1]!, 1]), padding: tfAttr.s('VALID'), data_format: tfAttr.s('NHWC') }, base);
    if (kind === 'avg' && outHW) {
      // AvgPool divided each window by kh·kw; ONNX divides by the window's count of input cells (plus explicit
      // padding when count_include_pad), never counting the ceil_mode overhang
      const dims = c.staticDims(x, 'AveragePool');
      const includePad = n.getInt('count_include_pad', 0) === 1;
      const counts = [0, 1].map((i) =>
        Array.from({ length: outHW![i]! }, (_, o) => {
          const start = o * s[i]! - pads[i]!;
          const lo = includePad ? -pads[i]! : 0;
          const hi = includePad ? dims[2 + i]! + pads[i + 2]! : dims[2 + i]!;
          return Math.max(0, Math.min(start + k[i]!, hi) - Math.max(start, lo));
        }),
      );
      const corr = new Float32Array(outHW[0]! * outHW[1]!);
      let any = false;
      for (let h = 0; h < outHW[0]!; h++) {
        for (let w = 0; w < outHW[1]!; w++) {
          const v = (k[0]! * k[1]!) / (counts[0]![h]! * counts[1]![w]!);
          corr[h * outHW[1]! + w] = v;
          if (v !== 1) any = true;
        }
      }
      if (any) y = c.b.op('Mul', [y, c.b.constF32(`${base}/count_correction`, [1, outHW[0]!, outHW[1]!, 1], corr)], T_FLOAT, `${base}/rescale`);
    }
    c.set(n.output(), y, NHWC);
  };
}

function globalPool(tfOp: 'Mean' | 'Max'): Handler {
  return (c, n) => {
    const x = n.input(0);
    const rank = c.rank(x);
    if (rank === undefined || rank < 3) throw new Unsupported('the input rank is unknown or below 3');
    const p = rank === 4 ? NHWC : identity(rank);
    const axes = rank === 4 ? [1, 2] : Array.from({ length: rank - 2 }, (_, i) => i + 2);
    const base = n.name || n.output().name;
    const y = c.b.op(tfOp, [c.get(x, p), c.b.constI32(`${base}/axes`, [axes.length], axes)], { ...T_FLOAT, keep_dims: tfAttr.b(true), Tidx: tfAttr.type('DT_INT32') }, base);
    c.set(n.output(), y, p);
  };
}

function reshapeTo(c: Ctx, n: Node, x: Value, dims: number[]): void {
  const base = n.name || n.output().name;
  const y = c.b.op('Reshape', [c.get(x), c.b.constI32(`${base}/shape`, [dims.length], dims)], { ...T_FLOAT, Tshape: tfAttr.type('DT_INT32') }, base);
  c.set(n.output(), y, identity(dims.length));
}

/** ONNX dims as a TF shape: unknown dims become -1 (at most one may be). */
function tfShape(dims: readonly Dim[], what: string): number[] {
  const out = dims.map((d) => (typeof d === 'number' ? d : -1));
  if (out.filter((d) => d === -1).length > 1) throw new Unsupported(`${what}: more than one unknown dim in [${dims.join(', ')}]`);
  return out;
}

const Reshape: Handler = (c, n) => {
  const x = n.input(0);
  const inShape = c.shape(x);
  const target = c.constOf(n.inputs[1]) ? c.constOf(n.inputs[1])!.toNumbers() : undefined;
  let dims: Dim[] | undefined;
  if (target && n.getInt('allowzero', 0) === 0) {
    dims = target.map((t, i) => (t === 0 ? (inShape?.[i] ?? null) : t === -1 ? null : t));
  } else if (target) dims = target;
  if (!dims || dims.filter((d) => typeof d !== 'number').length > 1) dims = n.output().shape as Dim[] | undefined;
  if (!dims) throw new Unsupported('the target shape is neither constant nor inferable');
  reshapeTo(c, n, x, tfShape(dims, 'Reshape'));
};

const Flatten: Handler = (c, n) => {
  const x = n.input(0);
  const s = c.shape(x);
  if (!s) throw new Unsupported('the input shape is unknown');
  let axis = n.getInt('axis', 1);
  if (axis < 0) axis += s.length;
  const prod = (ds: readonly Dim[]): Dim => (ds.every((d) => typeof d === 'number') ? (ds as number[]).reduce((a, b) => a * b, 1) : null);
  reshapeTo(c, n, x, tfShape([prod(s.slice(0, axis)), prod(s.slice(axis))], 'Flatten'));
};

const Transpose: Handler = (c, n) => {
  const x = n.input(0);
  const rank = c.rank(x);
  if (rank === undefined) throw new Unsupported('the input rank is unknown');
  const perm = n.getInts('perm', identity(rank).reverse());
  // the output is x in layout `perm` relative to x's ONNX order; take whichever layout x is held in
  const from = c.layoutOf(x);
  const src = c.get(x, from);
  const p = between(from, perm);
  const base = n.name || n.output().name;
  const y = isIdentity(p) ? src : c.b.op('Transpose', [src, c.b.constI32(`${base}/perm`, [rank], p)], T_FLOAT, base);
  c.set(n.output(), y, identity(rank));
};

const Softmax: Handler = (c, n) => {
  const x = n.input(0);
  const s = c.shape(x);
  if (!s) throw new Unsupported('the input rank is unknown');
  const rank = s.length;
  let axis = n.getInt('axis', c.opset >= 13 ? -1 : 1);
  if (axis < 0) axis += rank;
  const base = n.name || n.output().name;
  if (c.opset < 13 && axis !== rank - 1) {
    // before opset 13 Softmax normalizes over all dims from `axis` on, as one flattened row
    const prod = (ds: readonly Dim[]): number => (ds.every((d) => typeof d === 'number') ? (ds as number[]).reduce((a, b) => a * b, 1) : -1);
    const rows = c.b.op('Reshape', [c.get(x), c.b.constI32(`${base}/rows`, [2], [prod(s.slice(0, axis)), prod(s.slice(axis))])], T_FLOAT, `${base}/flatten`);
    const sm = c.b.op('Softmax', [rows], T_FLOAT, `${base}/softmax`);
    const back = tfShape(s, 'Softmax');
    c.set(n.output(), c.b.op('Reshape', [sm, c.b.constI32(`${base}/shape`, [rank], back)], T_FLOAT, base), identity(rank));
    return;
  }
  // TF's Softmax works on the last dim: use a layout in which the ONNX axis is last
  let p = c.layoutOf(x);
  if (p.indexOf(axis) !== rank - 1) {
    p = identity(rank);
    if (axis !== rank - 1) {
      const q = identity(rank);
      q[axis] = rank - 1;
      q[rank - 1] = axis;
      p = q;
    }
  }
  c.set(n.output(), c.b.op('Softmax', [c.get(x, p)], T_FLOAT, base), p);
};

const Pad: Handler = (c, n) => {
  const x = n.input(0);
  const rank = c.rank(x);
  if (rank === undefined) throw new Unsupported('the input rank is unknown');
  const mode = n.getString('mode', 'constant');
  let pads: number[];
  let value = 0;
  if (c.opset < 11) {
    pads = n.getInts('pads');
    value = n.getFloat('value', 0);
  } else {
    pads = ints(c, n.inputs[1], 'pads')!;
    value = floats(c, n.inputs[2])?.[0] ?? 0;
    const axesIn = ints(c, n.inputs[3], 'axes');
    if (axesIn) {
      const full = new Array<number>(2 * rank).fill(0);
      axesIn.forEach((a, i) => {
        const ax = a < 0 ? a + rank : a;
        full[ax] = pads[i]!;
        full[ax + rank] = pads[i + axesIn.length]!;
      });
      pads = full;
    }
  }
  if (pads.some((p) => p < 0)) throw new Unsupported(`negative pads ${JSON.stringify(pads)}`);
  const p = rank === 4 && c.has(x, NHWC) ? NHWC : identity(rank);
  const paddings = p.flatMap((a) => [pads[a]!, pads[a + rank]!]);
  const base = n.name || n.output().name;
  const pc = c.b.constI32(`${base}/paddings`, [rank, 2], paddings);
  let y: string;
  if (mode === 'constant') y = value === 0 ? c.b.op('Pad', [c.get(x, p), pc], T_FLOAT, base) : c.b.op('PadV2', [c.get(x, p), pc, scalar(c, `${base}/value`, value)], T_FLOAT, base);
  else if (mode === 'reflect') y = c.b.op('MirrorPad', [c.get(x, p), pc], { ...T_FLOAT, mode: tfAttr.s('REFLECT') }, base);
  else throw new Unsupported(`mode "${mode}" (constant and reflect convert)`);
  c.set(n.output(), y, p);
};

/** The source index ONNX's nearest Resize reads for output index `o` (onnxruntime's arithmetic). */
function onnxNearest(o: number, inSize: number, outSize: number, scale: number, coord: string, mode: string): number {
  let x: number;
  switch (coord) {
    case 'half_pixel': x = (o + 0.5) / scale - 0.5; break;
    case 'pytorch_half_pixel': x = outSize > 1 ? (o + 0.5) / scale - 0.5 : 0; break;
    case 'align_corners': x = outSize === 1 ? 0 : (o * (inSize - 1)) / (outSize - 1); break;
    case 'asymmetric': x = o / scale; break;
    case 'tf_half_pixel_for_nn': x = (o + 0.5) / scale; break;
    default: return NaN;
  }
  let i: number;
  if (mode === 'floor') i = Math.floor(x);
  else if (mode === 'ceil') i = Math.ceil(x);
  else if (mode === 'round_prefer_ceil') i = Math.floor(x + 0.5);
  else i = x === Math.floor(x) + 0.5 ? Math.floor(x) : Math.round(x); // round_prefer_floor
  return Math.min(inSize - 1, Math.max(0, i));
}

/** The source index tfjs's ResizeNearestNeighbor reads (tfjs-backend-cpu's arithmetic). */
function tfjsNearest(o: number, inSize: number, outSize: number, alignCorners: boolean, halfPixel: boolean): number {
  const ratio = alignCorners && outSize > 1 ? (inSize - 1) / (outSize - 1) : inSize / outSize;
  const frac = halfPixel ? ratio * (o + 0.5) : ratio * o;
  let i = Math.min(inSize - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
  if (halfPixel) i = Math.max(0, i);
  return i;
}

const Resize: Handler = (c, n) => {
  const x = n.input(0);
  const dims = c.staticDims(x, 'Resize');
  if (dims.length !== 4) throw new Unsupported(`rank-${dims.length} input (only NCHW images convert)`);
  const mode = n.getString('mode', 'nearest');
  if (n.opType === 'Resize' && n.getInt('antialias', 0) !== 0) throw new Unsupported('antialias');
  const coord = c.opset < 11 ? 'asymmetric' : n.getString('coordinate_transformation_mode', 'half_pixel');
  const nearestMode = c.opset < 11 ? 'floor' : n.getString('nearest_mode', 'round_prefer_floor');
  let scales = floats(c, c.opset < 11 || n.opType === 'Upsample' ? n.inputs[1] : n.inputs[2]);
  const sizes = c.opset >= 11 ? ints(c, n.inputs[3], 'sizes') : undefined;
  if (scales && scales.length === 0) scales = undefined;
  let out: number[];
  if (sizes?.length === 4) out = sizes;
  else if (scales?.length === 4) out = dims.map((d, i) => Math.floor(d * scales![i]!));
  else throw new Unsupported('neither 4 scales nor 4 sizes are given as constants');
  if (out[0] !== dims[0] || out[1] !== dims[1]) throw new Unsupported('resizing the batch or channel dims');
  const sc = [0, 1].map((i) => (sizes?.length === 4 || !scales ? out[2 + i]! / dims[2 + i]! : scales[2 + i]!));
  let ac = false;
  let hp = false;
  if (mode === 'nearest') {
    // pick the tfjs flags that read exactly the same source pixels as ONNX for this geometry
    const found = ([[false, false], [false, true], [true, false]] as const).find(([a, h]) =>
      [0, 1].every((i) => Array.from({ length: out[2 + i]! }, (_, o) => o).every((o) => onnxNearest(o, dims[2 + i]!, out[2 + i]!, sc[i]!, coord, nearestMode) === tfjsNearest(o, dims[2 + i]!, out[2 + i]!, a, h))),
    );
    if (!found) throw new Unsupported(`nearest Resize with coordinate_transformation_mode "${coord}" and nearest_mode "${nearestMode}" at this size has no TensorFlow.js equivalent`);
    [ac, hp] = found;
  } else if (mode === 'linear') {
    const exactScale = [0, 1].every((i) => Math.abs(sc[i]! - out[2 + i]! / dims[2 + i]!) <= 1e-6 * sc[i]!);
    if (coord === 'align_corners') ac = true;
    else if ((coord === 'half_pixel' || (coord === 'pytorch_half_pixel' && out[2]! > 1 && out[3]! > 1)) && exactScale) hp = true;
    else if (coord === 'asymmetric' && exactScale) hp = false;
    else throw new Unsupported(`linear Resize with coordinate_transformation_mode "${coord}"${exactScale ? '' : ' and a scale that is not output/input'}`);
  } else throw new Unsupported(`mode "${mode}" (nearest and linear convert)`);
  const base = n.name || n.output().name;
  const y = c.b.op(mode === 'nearest' ? 'ResizeNearestNeighbor' : 'ResizeBilinear', [c.get(x, NHWC), c.b.constI32(`${base}/size`, [2], [out[2]!, out[3]!])], { ...T_FLOAT, align_corners: tfAttr.b(ac), half_pixel_centers: tfAttr.b(hp) }, base);
  c.set(n.output(), y, NHWC);
};

const Constant: Handler = (c, n) => {
  // foldConstants normally turns these into initializers; a Constant whose output is a graph output stays
  const t = n.getTensor('value');
  if (!t) throw new Unsupported('only the "value" attribute form converts');
  const { data, dims } = constData(t, n.output().name);
  const name = data instanceof Float32Array ? c.b.constF32(n.output().name, dims, data) : c.b.constI32(n.output().name, dims, data);
  c.set(n.output(), name, identity(dims.length));
};

/** Every ONNX op that converts, in one table (the tests check each against onnxruntime). */
export const ONNX_TO_TFJS: Readonly<Record<string, Handler>> = {
  Conv,
  ConvTranspose,
  Gemm,
  MatMul,
  BatchNormalization,
  Relu: unary('Relu'),
  Clip,
  LeakyRelu: unary('LeakyRelu', (n) => ({ alpha: tfAttr.f(n.getFloat('alpha', 0.01)) })),
  Sigmoid: unary('Sigmoid'),
  Tanh: unary('Tanh'),
  Elu,
  HardSigmoid,
  HardSwish,
  Add: binary('AddV2'),
  Sub: binary('Sub'),
  Mul: binary('Mul'),
  Div: binary('RealDiv'),
  Max: binary('Maximum'),
  Min: binary('Minimum'),
  Concat,
  MaxPool: pool('max'),
  AveragePool: pool('avg'),
  GlobalAveragePool: globalPool('Mean'),
  GlobalMaxPool: globalPool('Max'),
  Flatten,
  Reshape,
  Transpose,
  Softmax,
  Dropout: alias,
  Identity: alias,
  Pad,
  Resize,
  Constant,
};

// ---------------------------------------------------------------------------------------------------------------
// the walk

function tfDtype(v: Value): string {
  const t = v.elemType;
  if (t === 'float32' || t === undefined) return 'DT_FLOAT';
  if (t === 'int32' || t === 'int64') return 'DT_INT32';
  throw new Unsupported(`graph input "${v.name}" is ${t} (float32, int32 and int64 convert)`);
}

function clone(model: Model): Model {
  return modelFromProto(decodeModelProto(encodeModel(model)));
}

/** Nodes the outputs depend on, reading through tensor inputs only (static inputs are read at conversion). */
function reachable(model: Model): Set<Node> {
  const seen = new Set<Node>();
  const stack = [...model.graph.outputs];
  while (stack.length) {
    const v = stack.pop()!;
    const p = v.producer;
    if (!p || seen.has(p) || v.initializer) continue;
    seen.add(p);
    const fixed = STATIC_INPUTS[p.opType] ?? [];
    p.inputs.forEach((i, idx) => {
      if (i && !fixed.includes(idx)) stack.push(i);
    });
  }
  return seen;
}

/**
 * Converts an ONNX model to a TensorFlow.js graph model: `model.json` and weight shards, as files in memory
 * (nothing is written; see `saveTfjs`). The model's inputs and outputs keep their ONNX names (as signature keys)
 * and shapes (NCHW stays NCHW). Throws one GraphError naming every node that cannot convert.
 *
 * @example
 * ```ts
 * const { files, notes } = await onnxToTfjs(await loadModel('fixtures/fmnist-cnn.onnx'));
 * files.map((f) => f.path); // ['model.json', 'group1-shard1of1.bin']
 * ```
 */
export async function onnxToTfjs(model: Model, options: OnnxToTfjsOptions = {}): Promise<TfjsFiles> {
  const m = clone(model);
  const notes: string[] = [];
  if (options.foldConstants ?? true) {
    const r = await foldConstants(m);
    if (r.modified) notes.push('folded constant subgraphs first');
  }
  inferShapes(m);
  const g = m.graph;
  const opset = m.opset() ?? 13;
  for (const [domain] of m.opsetImports) if (domain !== '' && domain !== 'ai.onnx' && [...g.nodes].some((n) => n.domain === domain)) notes.push(`domain ${domain} is used`);
  const needed = reachable(m);
  const order = g.nodes.filter((n) => needed.has(n));

  // first pass: ops with no handler, all at once
  const missing = new Map<string, string[]>();
  for (const n of order) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    if (!(n.domain === '' || n.domain === 'ai.onnx') || !ONNX_TO_TFJS[n.opType]) {
      if (!missing.has(key)) missing.set(key, []);
      missing.get(key)!.push(n.name || '(unnamed)');
    }
  }
  const b = new TfBuilder();
  const c = new Ctx(b, opset);
  const problems: string[] = [];
  const sig: { inputs: Record<string, TfTensorInfo>; outputs: Record<string, TfTensorInfo> } = { inputs: {}, outputs: {} };
  const failed = new Set<Value>();
  for (const v of g.inputs) {
    if (v.initializer) continue;
    try {
      const dtype = tfDtype(v);
      const dims = v.shape?.map((d) => (typeof d === 'number' ? d : -1));
      const name = b.name(v.name);
      b.nodes.push({ name, op: 'Placeholder', attr: { dtype: tfAttr.type(dtype), shape: tfAttr.shape(dims) } });
      c.set(v, name, identity(dims?.length ?? 0));
      sig.inputs[v.name] = { name: `${name}:0`, dtype, tensorShape: dims ? { dim: dims.map((d) => ({ size: String(d) })) } : { unknownRank: true } };
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      problems.push(e.message);
      failed.add(v);
    }
  }
  // second pass: convert; a node that fails is recorded and its dependents are skipped quietly
  for (const n of order) {
    const handler = ONNX_TO_TFJS[n.opType];
    const blocked = n.inputs.some((v) => v && failed.has(v));
    if (!handler || blocked || !(n.domain === '' || n.domain === 'ai.onnx')) {
      for (const o of n.outputs) if (o) failed.add(o);
      continue;
    }
    try {
      handler(c, n);
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      problems.push(`${n.opType} node "${n.name || '(unnamed)'}": ${e.message}`);
      for (const o of n.outputs) if (o) failed.add(o);
    }
  }
  if (missing.size || problems.length) {
    const parts: string[] = [];
    if (missing.size) parts.push(`unsupported ops: ${[...missing].map(([op, nodes]) => `${op} (node${nodes.length > 1 ? 's' : ''} ${nodes.slice(0, 6).map((x) => `"${x}"`).join(', ')}${nodes.length > 6 ? `, … ${nodes.length - 6} more` : ''})`).join(', ')}`);
    if (problems.length) parts.push(`unsupported attributes: ${problems.join('; ')}`);
    throw new GraphError(`Cannot convert model "${g.name}" to TensorFlow.js: ${parts.join('; ')}. Supported ops: ${Object.keys(ONNX_TO_TFJS).join(', ')}`);
  }
  for (const v of g.outputs) {
    const src = c.get(v);
    const name = b.op('Identity', [src], T_FLOAT, v.name);
    const dims = v.shape?.map((d) => (typeof d === 'number' ? d : -1));
    sig.outputs[v.name] = { name: `${name}:0`, dtype: v.elemType === 'int64' || v.elemType === 'int32' ? 'DT_INT32' : 'DT_FLOAT', tensorShape: dims ? { dim: dims.map((d) => ({ size: String(d) })) } : { unknownRank: true } };
  }
  const transposes = b.nodes.filter((n) => n.op === 'Transpose').length;
  notes.push(`${order.length} ONNX nodes became ${b.nodes.filter((n) => n.op !== 'Const').length} TensorFlow.js ops (${transposes} layout transposes)`);

  let total = 0;
  for (const w of b.weights) total += w.bytes.byteLength;
  const all = new Uint8Array(total);
  let at = 0;
  for (const w of b.weights) {
    all.set(w.bytes, at);
    at += w.bytes.byteLength;
  }
  const shards = shard(all, 1, options.shardBytes ?? SHARD_BYTES);
  const json: TfjsModelJson = {
    format: 'graph-model',
    generatedBy: `onnx ${m.producerName}${m.producerVersion ? ' ' + m.producerVersion : ''}`.trim(),
    convertedBy: 'onnxpress',
    modelTopology: { node: b.nodes, library: {}, versions: {} },
    weightsManifest: [{ paths: shards.map((s) => s.path), weights: b.weights.map((w) => w.spec) }],
    signature: sig,
    userDefinedMetadata: { onnx: { opset, inputs: Object.keys(sig.inputs), outputs: Object.keys(sig.outputs) } },
  };
  return { files: [{ path: 'model.json', data: new TextEncoder().encode(JSON.stringify(json)) }, ...shards], notes };
}
