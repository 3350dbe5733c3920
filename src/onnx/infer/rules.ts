/**
 * Inference rules shared by several ops (elementwise broadcasting, reductions, sliding windows, matrix
 * products). Each op file in `ops/` applies one of these or states its own rule.
 */
import { DTYPES, dtypeFromCode, parseDType, type DType } from '../dtype.js';
import type { Dim } from '../ir.js';
import type { Handler, InferContext, Inferred } from './context.js';
import { MAX_VALUE_ELEMENTS } from './context.js';
import { broadcastShapes, conflicts, sameDim, scaleDim, windowDim } from './dims.js';

/** y has the type and shape of input `i` (values are not carried: the op changes them). */
export const sameAsInput =
  (i = 0): Handler =>
  (ctx) => {
    const t = ctx.type(i);
    return [t && { elemType: t.elemType, shape: t.shape }];
  };

/** y is input 0 unchanged, known elements included. */
export const passThrough: Handler = (ctx) => [{ ...ctx.type(0), value: ctx.value(0) }];

/** The numpy broadcast of the given inputs' shapes (omitted inputs skipped); a contradiction names both shapes. */
export function broadcastInputs(ctx: InferContext, indices: readonly number[]): Dim[] | undefined {
  const given = indices.filter((i) => ctx.has(i));
  const shapes: (readonly Dim[])[] = [];
  for (const i of given) {
    const s = ctx.shape(i);
    if (!s) return undefined;
    shapes.push(s);
  }
  const r = broadcastShapes(shapes);
  if ('conflict' in r) ctx.fail(`cannot broadcast ${given.map((i) => ctx.describe(i)).join(' with ')}: dimension ${r.conflict} of the result differs`);
  return r.shape;
}

/** Elementwise function on partial values, for ops that shape computations use. */
export type ValueFn = (args: Dim[], elemType: DType | undefined) => Dim;

/**
 * Elementwise op over every input with numpy broadcasting. The output type is input `typeFrom`'s, or a fixed
 * dtype (comparisons give bool). With `fn`, known input elements of rank ≤ 1 are combined into the output's.
 */
export const elementwise =
  (out: { typeFrom?: number; dtype?: DType; fn?: ValueFn } = {}): Handler =>
  (ctx) => {
    const all = ctx.node.inputs.map((_, i) => i);
    const elemType = out.dtype ?? ctx.elemType(out.typeFrom ?? 0);
    const shape = broadcastInputs(ctx, all);
    return [{ elemType, shape, value: out.fn && shape ? elementwiseValue(ctx, all, shape, out.fn, ctx.elemType(0)) : undefined }];
  };

function elementwiseValue(ctx: InferContext, inputs: number[], shape: readonly Dim[], fn: ValueFn, elemType: DType | undefined): Dim[] | undefined {
  if (shape.length > 1) return undefined;
  const values = inputs.map((i) => ctx.value(i));
  if (values.some((v) => v === undefined)) return undefined;
  const len = shape.length === 0 ? 1 : shape[0];
  if (typeof len !== 'number' || len > MAX_VALUE_ELEMENTS) return undefined;
  return Array.from({ length: len }, (_, k) => fn(values.map((v) => (v!.length === 1 ? v![0] : v![k] ?? null)), elemType));
}

/** Integer dtypes, whose division truncates. */
export function isInteger(t: DType | undefined): boolean {
  return t !== undefined && /^u?int/.test(t);
}

/**
 * Reduction over `axes` (an attribute before opset `axesInputSince`, input 1 from it, where an empty list reduces
 * everything unless noop_with_empty_axes). keepdims leaves 1s in place of reduced axes.
 */
export function reduce(ctx: InferContext, axesInputSince: number): Inferred[] {
  const t = ctx.type(0);
  const elemType = t?.elemType;
  const shape = t?.shape;
  const keep = ctx.node.getInt('keepdims', 1) !== 0;
  const fromInput = ctx.opset >= axesInputSince;
  let axes: number[] | undefined = fromInput ? (ctx.has(1) ? ctx.numbers(1) : []) : ctx.node.getInts('axes', []);
  if (!shape) return [{ elemType }];
  if (axes === undefined) {
    // which axes is unknown: kept dims are the input's or 1; without keepdims only the count may be known
    const count = ctx.elements(1)?.length;
    if (keep) return [{ elemType, shape: shape.map((d) => (d === 1 ? 1 : null)) }];
    return [{ elemType, shape: count !== undefined ? Array<Dim>(shape.length - count).fill(null) : undefined }];
  }
  if (axes.length === 0) {
    if (fromInput && ctx.node.getInt('noop_with_empty_axes', 0)) return [{ elemType, shape }];
    axes = shape.map((_, i) => i);
  }
  const reduced = new Set(axes.map((a) => ctx.axis(a, shape.length)));
  return [{ elemType, shape: keep ? shape.map((d, i) => (reduced.has(i) ? 1 : d)) : shape.filter((_, i) => !reduced.has(i)) }];
}

/**
 * Spatial output sizes of a convolution or pooling window over `spatial`: auto_pad SAME_* gives ⌈d/stride⌉,
 * VALID no padding, NOTSET the `pads` attribute; then the window formula with strides and dilations.
 */
export function windowShape(ctx: InferContext, spatial: readonly Dim[], kernel: readonly (number | null)[], ceil = false): Dim[] {
  const n = spatial.length;
  const strides = ctx.node.getInts('strides', Array(n).fill(1));
  const dilations = ctx.node.getInts('dilations', Array(n).fill(1));
  const autoPad = ctx.node.getString('auto_pad', 'NOTSET') || 'NOTSET';
  const pads = autoPad === 'NOTSET' ? ctx.node.getInts('pads', Array(2 * n).fill(0)) : Array(2 * n).fill(0);
  expectLength(ctx, 'strides', strides, n);
  expectLength(ctx, 'dilations', dilations, n);
  expectLength(ctx, 'pads', pads, 2 * n);
  expectLength(ctx, 'kernel_shape', kernel, n);
  return spatial.map((d, i) => {
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return sameDim(d, strides[i]);
    const k = kernel[i];
    return k === null ? null : windowDim(d, k, strides[i], dilations[i], pads[i], pads[i + n], ceil);
  });
}

/**
 * Convolution (Conv, ConvInteger, QLinearConv): [N, M, ...windows] for x = [N, C, ...], w = [M, C/group, ...k].
 * C ≠ w[1]·group is a contradiction.
 */
export function convShape(ctx: InferContext, xi: number, wi: number): Dim[] | undefined {
  const x = ctx.shape(xi);
  const w = ctx.shape(wi);
  if (!x || x.length < 3) return undefined;
  const group = ctx.node.getInt('group', 1);
  if (w && w.length !== x.length) ctx.fail(`weight ${ctx.describe(wi)} has rank ${w.length} but ${ctx.describe(xi)} has rank ${x.length}`);
  if (w && conflicts(x[1], scaleDim(w[1], group))) {
    ctx.fail(`${ctx.describe(xi)} has ${x[1]} channels but weight ${ctx.describe(wi)} expects ${w[1]} × group ${group} = ${scaleDim(w[1], group)}`);
  }
  const given = ctx.node.getInts('kernel_shape', []);
  const kernel = given.length ? given : (w?.slice(2).map((d) => (typeof d === 'number' ? d : null)) ?? Array(x.length - 2).fill(null));
  return [x[0], w ? w[0] : null, ...windowShape(ctx, x.slice(2), kernel)];
}

/**
 * Matrix product with numpy semantics (MatMul, MatMulInteger, QLinearMatMul): 1-D operands are promoted and the
 * added dim dropped again; batch dims broadcast; the inner dims must agree.
 */
export function matmulShape(ctx: InferContext, ai: number, bi: number): Dim[] | undefined {
  const a = ctx.shape(ai);
  const b = ctx.shape(bi);
  if (!a || !b) return undefined;
  if (a.length === 0 || b.length === 0) ctx.fail(`matrix product of a scalar: ${ctx.describe(ai)}, ${ctx.describe(bi)}`);
  const A = a.length === 1 ? [1, a[0]] : a;
  const B = b.length === 1 ? [b[0], 1] : b;
  if (conflicts(A[A.length - 1], B[B.length - 2])) {
    ctx.fail(`inner dimensions differ: ${ctx.describe(ai)} has ${A[A.length - 1]} columns but ${ctx.describe(bi)} has ${B[B.length - 2]} rows`);
  }
  const batch = broadcastShapes([A.slice(0, -2), B.slice(0, -2)]);
  if ('conflict' in batch) ctx.fail(`batch dimensions of ${ctx.describe(ai)} and ${ctx.describe(bi)} do not broadcast`);
  return [...batch.shape, ...(a.length > 1 ? [A[A.length - 2]] : []), ...(b.length > 1 ? [B[B.length - 1]] : [])];
}

/** Checks that a list attribute or input has one entry per axis, naming the node when not. */
export function expectLength(ctx: InferContext, what: string, list: readonly unknown[], n: number): void {
  if (list.length !== n) ctx.fail(`${what} has ${list.length} ${list.length === 1 ? 'entry' : 'entries'} (${JSON.stringify(list)}) but ${n} are needed`);
}

/** Pooling (MaxPool, AveragePool, LpPool): [N, C, ...windows] over kernel_shape, rounding up with ceil_mode. */
export function poolShape(ctx: InferContext): Dim[] | undefined {
  const x = ctx.shape(0);
  if (!x || x.length < 3) return undefined;
  const kernel = ctx.node.getInts('kernel_shape');
  return [x[0], x[1], ...windowShape(ctx, x.slice(2), kernel, ctx.node.getInt('ceil_mode', 0) !== 0)];
}

/** ArgMax / ArgMin: int64, x's shape with `axis` removed, or kept as 1 with keepdims. */
export function argReduce(ctx: InferContext): Inferred[] {
  const shape = ctx.shape(0);
  if (!shape) return [{ elemType: 'int64' }];
  const axis = ctx.axis(ctx.node.getInt('axis', 0), shape.length);
  const keep = ctx.node.getInt('keepdims', 1) !== 0;
  return [{ elemType: 'int64', shape: keep ? shape.map((d, i) => (i === axis ? 1 : d)) : shape.filter((_, i) => i !== axis) }];
}

/** Global pooling: [N, C, 1, …, 1]. */
export const globalPool: Handler = (ctx) => {
  const t = ctx.type(0);
  return [t && { elemType: t.elemType, shape: t.shape && t.shape.map((d, i) => (i < 2 ? d : 1)) }];
};

/** A dtype attribute (Cast's `to`): an ONNX type code, or before opset 6 a name such as "FLOAT". */
export function dtypeAttr(ctx: InferContext, name: string): DType | undefined {
  const a = ctx.node.getAttr(name);
  if (a?.type === 'int') return dtypeFromCode(a.value);
  if (a?.type === 'string') {
    try {
      return parseDType(a.value.toLowerCase());
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Known elements converted to a dtype: integers truncate, bool tests for non-zero; symbols survive numeric casts. */
export function castElements(value: readonly Dim[] | undefined, to: DType | undefined): Dim[] | undefined {
  if (!value || !to) return undefined;
  if (to === 'bool') return value.map((d) => (typeof d === 'number' ? Number(d !== 0) : null));
  if (isInteger(to)) return value.map((d) => (typeof d === 'number' ? Math.trunc(d) : d));
  return DTYPES[to].float ? [...value] : undefined;
}

/** ⌊d·scale⌋ computed in float32, as onnxruntime sizes Resize and Upsample outputs; a scale of 1 keeps symbols. */
export function scaleFloor(d: Dim, scale: number): Dim {
  if (scale === 1) return d;
  return typeof d === 'number' ? Math.floor(Math.fround(Math.fround(scale) * d)) : null;
}
