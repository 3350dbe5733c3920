/**
 * `hygiene.foldBatchNorm`: folds an inference-mode BatchNormalization into the linear op before it.
 *
 * With s = gamma / sqrt(var + eps) and t = beta - mean * s (per channel c), BN(y)[c] = y[c] * s[c] + t[c], so:
 *
 * 1. `Conv(x, W, b)` (any group count): W'[c, ...] = W[c, ...] * s[c]; b'[c] = b[c] * s[c] + t[c] (b = 0 if absent).
 * 2. `ConvTranspose(x, W, b)`: W has layout [Cin, Cout/g, ...]; input channel i belongs to group i / (Cin/g), so
 *    W'[i, j, ...] = W[i, j, ...] * s[group(i) * Cout/g + j]; b' as in case 1.
 * 3. `Gemm(A, B, C)`, output [M, N] with channels N: column n of op(B) is scaled by s[n] (row n of B when
 *    transB = 1); C' = beta * C * s + t with beta set to 1 (C broadcast to [N] or [M, N]; C = 0 if absent).
 * 4. `MatMul(A, W)` with A of known rank 2 and W a constant [K, N], optionally followed by `Add(·, b)` with b a
 *    constant [N] or [1, N]: W'[:, n] = W[:, n] * s[n]; b' = b * s + t; without the Add one is inserted.
 *
 * It folds only when the op's output has no reader but the BN and is not a graph output, the BN is in inference
 * mode (training_mode absent or 0, spatial absent or 1, its extra outputs unused), and the weights and BN
 * parameters are constants (initializers or Constant nodes). Arithmetic is in float64; weights are written back in
 * their own dtype (float32, float64, or float16 / bfloat16 through codecs). A weight that other nodes also read is
 * left as it is for them: the folded node gets a new initializer. A BatchNormalization with no such op before it
 * is left alone: folding it would need a Mul and an Add, which run no faster than BN itself.
 */
import { z } from 'zod';
import type { Pass, PassResult } from '../../pass.js';
import { fromFloat32, toFloat32 } from '../codecs.js';
import type { DType, TypedArray } from '../dtype.js';
import type { Graph, Model, Node, Value } from '../ir.js';
import { Tensor } from '../tensor.js';
import { FOLDABLE_FLOAT_DTYPES, addConstant, adoptName, constantOf, dropUnreadConstants, isOnnxDomain, opsetOf } from './constants.js';

/**
 * The ops a BatchNormalization can be folded into.
 *
 * @example
 * ```ts
 * await foldBatchNorm(model, { into: BN_FOLD_TARGETS.filter((op) => op !== 'MatMul') });
 * ```
 */
export const BN_FOLD_TARGETS = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'] as const;

/**
 * Options of `hygiene.foldBatchNorm`.
 *
 * @example
 * ```ts
 * foldBatchNormOptions.parse({ into: ['Conv'] });
 * ```
 */
export const foldBatchNormOptions = z.object({
  into: z
    .array(z.enum(BN_FOLD_TARGETS))
    .default([...BN_FOLD_TARGETS])
    .describe('Ops that an inference-mode BatchNormalization right after them is folded into'),
});
export type FoldBatchNormOptions = z.input<typeof foldBatchNormOptions>;

/** Per-channel scale s and shift t of an inference BN: BN(y) = y * s + t. */
interface Affine {
  s: Float64Array;
  t: Float64Array;
}

/** Why a BN cannot be folded (a note), or the affine map it applies. */
function bnAffine(bn: Node, opset: number): Affine | string {
  if (bn.getInt('training_mode', 0) !== 0) return 'it is in training mode';
  if (opset < 7 && bn.getInt('is_test', 0) === 0) return 'is_test is 0 (training mode before opset 7)';
  if (bn.getInt('spatial', 1) !== 1) return 'spatial = 0 (per-activation statistics)';
  for (const o of bn.outputs.slice(1)) if (o && (o.uses.length || o.isGraphOutput)) return `its statistics output "${o.name}" is read`;
  const params = [1, 2, 3, 4].map((i) => constantOf(bn.inputs[i]));
  if (params.some((p) => !p)) return 'its scale, bias, mean and variance are not all constant';
  const [gamma, beta, mean, variance] = params.map((p) => readFloats(p!));
  if (!gamma || !beta || !mean || !variance) return `its parameters are not ${FOLDABLE_FLOAT_DTYPES.join('/')}`;
  const c = gamma.length;
  if (params.some((p) => p!.dims.length !== 1) || [beta, mean, variance].some((a) => a.length !== c)) {
    return `its parameters are not 1-D of one length (dims ${params.map((p) => JSON.stringify(p!.dims)).join(', ')})`;
  }
  const eps = bn.getFloat('epsilon', 1e-5);
  const s = new Float64Array(c);
  const t = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    s[i] = gamma[i]! / Math.sqrt(variance[i]! + Math.fround(eps));
    t[i] = beta[i]! - mean[i]! * s[i]!;
  }
  return { s, t };
}

/** A float tensor's elements as float64, or undefined for other dtypes. */
function readFloats(t: Tensor): Float64Array | undefined {
  if (!FOLDABLE_FLOAT_DTYPES.includes(t.dtype)) return undefined;
  const d = t.data();
  if (t.dtype === 'float32' || t.dtype === 'float64') return Float64Array.from(d as Float32Array | Float64Array);
  return Float64Array.from(toFloat32(d, t.dtype, t.size));
}

/** float64 values as a tensor of `dtype` (float16 / bfloat16 through codecs, rounding to nearest even). */
function writeFloats(dtype: DType, dims: readonly number[], x: Float64Array): Tensor {
  if (dtype === 'float64') return Tensor.from('float64', dims, x);
  const f32 = Float32Array.from(x);
  return Tensor.from(dtype, dims, dtype === 'float32' ? f32 : (fromFloat32(f32, dtype) as TypedArray));
}

/**
 * Points input `index` of `node` at a new constant; the old constant is dropped when nothing else reads it, and
 * then the new one takes its name.
 */
function setConstantInput(node: Node, index: number, t: Tensor, baseName: string): void {
  const old = node.inputs[index] ?? null;
  const v = addConstant(node.graph, old ? `${old.name}_bnfold` : baseName, t);
  node.setInput(index, v);
  if (old && dropUnreadConstants([old])) adoptName(v, old.name);
}

/** Folds BN's affine map into the weights of `op`; returns the value that now carries BN's output, or a note. */
type Folder = (op: Node, f: Affine, bn: Node) => Value | string;

const foldConv: Folder = (conv, { s, t }) => {
  const W = constantOf(conv.inputs[1]);
  const w = W && readFloats(W);
  if (!W || !w) return 'its weight is not a float constant';
  const m = W.dims[0];
  if (W.dims.length < 3 || m !== s.length) return `its weight dims ${JSON.stringify(W.dims)} do not have ${s.length} output channels first`;
  const B = conv.inputs[2] ? constantOf(conv.inputs[2]) : undefined;
  if (conv.inputs[2] && !B) return 'its bias is not constant';
  const b = B ? readFloats(B) : new Float64Array(m);
  if (!b || b.length !== m) return 'its bias is not a float constant of one value per output channel';
  const per = w.length / m;
  for (let c = 0; c < m; c++) for (let k = 0; k < per; k++) w[c * per + k]! *= s[c]!; // case 1
  for (let c = 0; c < m; c++) b[c] = b[c]! * s[c]! + t[c]!;
  setConstantInput(conv, 1, writeFloats(W.dtype, W.dims, w), `${conv.name}_W`);
  setConstantInput(conv, 2, writeFloats(B?.dtype ?? W.dtype, [m], b), `${conv.name}_bias`);
  return conv.output(0);
};

const foldConvTranspose: Folder = (ct, { s, t }) => {
  const W = constantOf(ct.inputs[1]);
  const w = W && readFloats(W);
  if (!W || !w) return 'its weight is not a float constant';
  const g = ct.getInt('group', 1);
  const [cin, coutPerGroup] = W.dims;
  if (W.dims.length < 3 || cin === undefined || coutPerGroup === undefined || cin % g !== 0 || coutPerGroup * g !== s.length) {
    return `its weight dims ${JSON.stringify(W.dims)} with group ${g} do not give ${s.length} output channels`;
  }
  const cout = coutPerGroup * g;
  const B = ct.inputs[2] ? constantOf(ct.inputs[2]) : undefined;
  if (ct.inputs[2] && !B) return 'its bias is not constant';
  const b = B ? readFloats(B) : new Float64Array(cout);
  if (!b || b.length !== cout) return 'its bias is not a float constant of one value per output channel';
  const k = w.length / (cin * coutPerGroup);
  const cinPerGroup = cin / g;
  for (let i = 0; i < cin; i++) {
    const group = Math.floor(i / cinPerGroup);
    for (let j = 0; j < coutPerGroup; j++) {
      const sc = s[group * coutPerGroup + j]!; // case 2
      const base = (i * coutPerGroup + j) * k;
      for (let e = 0; e < k; e++) w[base + e]! *= sc;
    }
  }
  for (let c = 0; c < cout; c++) b[c] = b[c]! * s[c]! + t[c]!;
  setConstantInput(ct, 1, writeFloats(W.dtype, W.dims, w), `${ct.name}_W`);
  setConstantInput(ct, 2, writeFloats(B?.dtype ?? W.dtype, [cout], b), `${ct.name}_bias`);
  return ct.output(0);
};

/** Scales column n of a [K, N] matrix (or row n of an [N, K] one when `transposed`) by s[n], in place. */
function scaleColumns(w: Float64Array, dims: readonly number[], s: Float64Array, transposed: boolean): void {
  const [r, c] = dims as [number, number];
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) w[i * c + j]! *= s[transposed ? i : j]!;
}

const foldGemm: Folder = (gemm, { s, t }) => {
  const Bt = constantOf(gemm.inputs[1]);
  const bw = Bt && readFloats(Bt);
  if (!Bt || !bw || Bt.dims.length !== 2) return 'its B is not a 2-D float constant';
  const transB = gemm.getInt('transB', 0) !== 0;
  const n = transB ? Bt.dims[0]! : Bt.dims[1]!;
  if (n !== s.length) return `its B dims ${JSON.stringify(Bt.dims)} (transB ${Number(transB)}) do not have ${s.length} output channels`;
  const C = gemm.inputs[2] ? constantOf(gemm.inputs[2]) : undefined;
  if (gemm.inputs[2] && !C) return 'its C is not constant';
  const c = C ? readFloats(C) : new Float64Array(1);
  if (!c) return 'its C is not a float constant';
  const cd = C ? C.dims : [];
  if (cd.length > 2 || (cd.length >= 1 && cd[cd.length - 1] !== 1 && cd[cd.length - 1] !== n)) return `its C dims ${JSON.stringify(cd)} do not broadcast to [M, ${n}]`;
  const rows = cd.length === 2 ? cd[0]! : 1;
  const cols = cd.length >= 1 ? cd[cd.length - 1]! : 1;
  const beta = C ? gemm.getFloat('beta', 1) : 0;
  const out = new Float64Array(rows * n);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < n; j++) out[i * n + j] = beta * c[i * cols + (cols === 1 ? 0 : j)]! * s[j]! + t[j]!; // case 3
  }
  scaleColumns(bw, Bt.dims, s, transB);
  setConstantInput(gemm, 1, writeFloats(Bt.dtype, Bt.dims, bw), `${gemm.name}_B`);
  setConstantInput(gemm, 2, writeFloats(C?.dtype ?? Bt.dtype, cd.length === 2 ? [rows, n] : [n], out), `${gemm.name}_C`);
  gemm.setAttr('beta', { type: 'float', value: 1 });
  return gemm.output(0);
};

const foldMatMul: Folder = (mm, { s, t }, bn) => {
  const a = mm.inputs[0];
  if (a?.shape?.length !== 2) return 'its first input is not known to be 2-D (BN would scale another axis than MatMul’s columns)';
  const W = constantOf(mm.inputs[1]);
  const w = W && readFloats(W);
  if (!W || !w || W.dims.length !== 2 || W.dims[1] !== s.length) return `its weight is not a 2-D float constant with ${s.length} columns`;
  const y = mm.output(0);
  const reader = y.uses.length === 1 && !y.isGraphOutput ? y.uses[0]! : undefined;
  if (!reader) return `its output "${y.name}" is read elsewhere too`;
  if (reader.node === bn) {
    // MatMul → BN: scale the columns and add t after the MatMul
    scaleColumns(w, W.dims, s, false);
    setConstantInput(mm, 1, writeFloats(W.dtype, W.dims, w), `${mm.name}_W`);
    const bias = addConstant(mm.graph, `${bn.name || mm.name}_bias`, writeFloats(W.dtype, [s.length], t));
    return mm.graph.addNode({ opType: 'Add', name: mm.graph.uniqueNodeName(`${bn.name || mm.name}_add`), inputs: [y, bias], after: mm }).output(0);
  }
  // MatMul → Add(·, b) → BN: fold into both (the caller checked that the Add only feeds the BN)
  const add = reader.node;
  const bi = 1 - reader.index;
  const B = constantOf(add.inputs[bi]);
  const b = B && readFloats(B);
  if (!(add.opType === 'Add' && isOnnxDomain(add) && B && b && b.length === s.length && B.dims[B.dims.length - 1] === s.length && B.dims.length <= 2)) {
    return `its output goes through ${add}, which is not Add(·, constant [N])`;
  }
  for (let c = 0; c < b.length; c++) b[c] = b[c]! * s[c]! + t[c]!; // case 4
  scaleColumns(w, W.dims, s, false);
  setConstantInput(mm, 1, writeFloats(W.dtype, W.dims, w), `${mm.name}_W`);
  setConstantInput(add, bi, writeFloats(B.dtype, B.dims, b), `${add.name}_B`);
  return add.output(0);
};

const FOLDERS: Record<(typeof BN_FOLD_TARGETS)[number], Folder> = {
  Conv: foldConv,
  ConvTranspose: foldConvTranspose,
  Gemm: foldGemm,
  MatMul: foldMatMul,
};

/** Tries to fold one BN; returns a note saying what happened or why not. */
function foldOne(g: Graph, bn: Node, into: readonly string[], opset: number): { folded: boolean; note: string } {
  const x = bn.inputs[0];
  const leave = (why: string) => ({ folded: false, note: `left ${bn}: ${why}` });
  const before = x?.producer;
  if (!x || !before || before.graph !== g) return leave('no Conv, ConvTranspose, Gemm or MatMul before it (a standalone BN runs as fast as the Mul and Add it would become)');
  if (x.isGraphOutput || x.uses.length !== 1) return leave(`the output "${x.name}" of ${before} is read elsewhere too`);
  // case 4 with an Add: the op to fold into is the MatMul behind the Add
  const behindAdd = before.opType === 'Add' && isOnnxDomain(before) ? before.inputs.map((v) => v?.producer).find((p) => p?.opType === 'MatMul' && isOnnxDomain(p) && p.graph === g) : undefined;
  const op = behindAdd ?? before;
  if (!isOnnxDomain(op) || !(into as string[]).includes(op.opType)) return leave(`it follows ${before}, which is not one of ${into.join(', ')}`);
  const affine = bnAffine(bn, opset);
  if (typeof affine === 'string') return leave(affine);
  const params = bn.inputs.slice(1);
  const oldInputs = [...op.inputs];
  const out = FOLDERS[op.opType as (typeof BN_FOLD_TARGETS)[number]](op, affine, bn);
  if (typeof out === 'string') return leave(`${op}: ${out}`);
  const y = bn.output(0);
  y.replaceAllUsesWith(out); // BN(op(x)) -> op'(x)
  g.removeNode(bn);
  dropUnreadConstants([...params, ...oldInputs]);
  return { folded: true, note: `folded ${bn} into ${op}` };
}

/**
 * The `hygiene.foldBatchNorm` pass; its cases are listed at the top of this file.
 *
 * @example
 * ```ts
 * const { modified, notes } = await runPass(foldBatchNormPass, model);
 * ```
 */
export const foldBatchNormPass: Pass<typeof foldBatchNormOptions> = {
  name: 'hygiene.foldBatchNorm',
  description: 'Folds inference-mode BatchNormalization into the Conv, ConvTranspose, Gemm or MatMul before it',
  inPlace: true,
  options: foldBatchNormOptions,
  run(model: Model, options): PassResult {
    const g = model.graph;
    const notes: string[] = [];
    let modified = false;
    for (const bn of [...g.nodes]) {
      if (bn.opType !== 'BatchNormalization' || !isOnnxDomain(bn) || !g.nodes.includes(bn)) continue;
      const r = foldOne(g, bn, options.into, opsetOf(model));
      modified ||= r.folded;
      notes.push(r.note);
    }
    return { model, modified, notes };
  },
};
