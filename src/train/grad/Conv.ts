import { attr, type Attr, type Node, type Value } from '../../onnx/ir.js';
import type { Emitter } from '../graph.js';
import { Tensor } from '../../onnx/tensor.js';
import type { GradRule } from './table.js';

/** Where a convolution or pooling window goes: per spatial dim kernel, strides, dilations, pads (begins then ends) and sizes. */
export interface ConvGeometry {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Begin pads of every spatial dim, then end pads (ONNX order), with auto_pad resolved. */
  pads: number[];
  /** Spatial dims of the input. */
  input: number[];
  /** Spatial dims of the output (floor mode). */
  output: number[];
}

/**
 * The geometry of a Conv, ConvTranspose-adjoint or pooling node over input `x` (fixed spatial dims needed), with
 * `auto_pad` SAME_UPPER/SAME_LOWER turned into explicit pads as onnxruntime computes them.
 *
 * @example
 * ```ts
 * convGeometry(em, conv, conv.input(0), [3, 3]).output; // [28, 28]
 * ```
 */
export function convGeometry(em: Emitter, node: Node, x: Value, kernel: readonly number[]): ConvGeometry {
  const r = kernel.length;
  const xs = em.shape(x);
  if (xs.length !== r + 2) em.fail(`input "${x.name}" has rank ${xs.length}, but a ${r}-d kernel needs rank ${r + 2}`);
  const input = xs.slice(2).map((d) => (typeof d === 'number' ? d : em.fail(`needs fixed spatial dims, but "${x.name}" has [${xs.join(', ')}]`)));
  const ones = new Array<number>(r).fill(1);
  const strides = node.getInts('strides', ones);
  const dilations = node.getInts('dilations', ones);
  const autoPad = node.getString('auto_pad', 'NOTSET');
  let pads: number[];
  if (autoPad === 'NOTSET') pads = node.getInts('pads', new Array<number>(2 * r).fill(0));
  else if (autoPad === 'VALID') pads = new Array<number>(2 * r).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array<number>(2 * r).fill(0);
    input.forEach((n, i) => {
      const out = Math.ceil(n / strides[i]!);
      const total = Math.max(0, (out - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - n);
      const head = autoPad === 'SAME_LOWER' ? total - Math.floor(total / 2) : Math.floor(total / 2);
      pads[i] = head;
      pads[i + r] = total - head;
    });
  } else em.fail(`auto_pad "${autoPad}" is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER`);
  const output = input.map((n, i) => Math.floor((n + pads[i]! + pads[i + r]! - (kernel[i]! - 1) * dilations[i]! - 1) / strides[i]!) + 1);
  return { kernel: [...kernel], strides, dilations, pads, input, output };
}

/**
 * The ConvTranspose that is the adjoint of a convolution with this geometry: maps a gradient of the output back onto
 * the input's grid (`output_padding` restores the rows a strided window never reached).
 */
export function convTransposeAttrs(geo: ConvGeometry, group: number): Record<string, Attr> {
  const r = geo.kernel.length;
  const outputPadding = geo.input.map(
    (n, i) => n + geo.pads[i]! + geo.pads[i + r]! - ((geo.output[i]! - 1) * geo.strides[i]! + (geo.kernel[i]! - 1) * geo.dilations[i]! + 1),
  );
  const a: Record<string, Attr> = {
    kernel_shape: attr.ints(geo.kernel),
    strides: attr.ints(geo.strides),
    dilations: attr.ints(geo.dilations),
    pads: attr.ints(geo.pads),
  };
  if (group !== 1) a.group = attr.int(group);
  if (outputPadding.some((p) => p !== 0)) a.output_padding = attr.ints(outputPadding);
  return a;
}

/**
 * Largest column tensor per sample (Cin·K·Ho·Wo elements) for which `convWeightGrad` uses im2col (32 MiB at batch
 * 64): above it the column tensor's memory outweighs its speed.
 */
export const IM2COL_MAX_ELEMENTS = 1 << 17;

/**
 * d(loss)/dW of a convolution `input` → (gradient `gout`) with weight dims `wDims` = [Cout, Cin/group, k…].
 * - group 1, column tensor up to `IM2COL_MAX_ELEMENTS` per sample: im2col by a grouped Conv with one-hot kernels
 *   (cheap: K outputs per input channel), then a batched MatMul with dY summed over the batch — the probe's faster
 *   form, 6–12% faster per step of the bench CNN than the next one (both convs use it).
 * - otherwise a convolution of the input, its channels made the batch, with the output gradient, its channels made
 *   the output channels, as the kernel (strides and dilations swapped) — the probe's first form; its kernel is a
 *   run-time tensor, so onnxruntime cannot prepack it:
 *   - group 1: Conv(Xᵀ, dYᵀ) → [Cin, Cout, k…], transposed back;
 *   - group > 1: one group per input channel, the batch as that group's channels: Conv([1, Cin·N, …], kernel of the
 *     dYᵀ channels of each input channel's group, group = Cin) → [1, Cin·Cout/group, k…], rearranged to the
 *     weight's layout. Depthwise (Cin/group = Cout/group = 1) needs no gather and no rearranging.
 *   End pads are trimmed where the window would give more than k rows; what is left over is sliced off.
 */
export function convWeightGrad(em: Emitter, input: Value, gout: Value, geo: ConvGeometry, group: number, wDims: readonly number[]): Value {
  const r = geo.kernel.length;
  const [cout, cinG] = [wDims[0]!, wDims[1]!];
  const cin = cinG * group;
  const coutG = cout / group;
  const perm = [1, 0, ...Array.from({ length: r }, (_, i) => i + 2)];
  const pads = [...geo.pads];
  const sizes = geo.kernel.map((k, i) => {
    const [s, d] = [geo.strides[i]!, geo.dilations[i]!];
    let kk = Math.floor((geo.input[i]! + pads[i]! + pads[i + r]! - s * (geo.output[i]! - 1) - 1) / d) + 1;
    const cut = Math.min(kk - k, Math.floor(pads[i + r]! / d));
    if (cut > 0) {
      pads[i + r] -= cut * d;
      kk -= cut;
    }
    return kk;
  });
  const K = geo.kernel.reduce((p, k) => p * k, 1);
  if (group === 1 && cin * K * geo.output.reduce((p, d) => p * d, 1) <= IM2COL_MAX_ELEMENTS) {
    // im2col: one one-hot kernel per (input channel, kernel position), as a grouped Conv → [N, Cin·K, Ho, Wo]
    const onehot = new Float32Array(cin * K * K);
    for (let c = 0; c < cin; c++) for (let j = 0; j < K; j++) onehot[(c * K + j) * K + j] = 1;
    const picker = em.constant(Tensor.from('float32', [cin * K, 1, ...geo.kernel], onehot), 'train/im2col_kernel');
    const cols = em.op('Conv', [input, picker], {
      group: attr.int(cin),
      kernel_shape: attr.ints(geo.kernel),
      strides: attr.ints(geo.strides),
      dilations: attr.ints(geo.dilations),
      pads: attr.ints(geo.pads),
    });
    // Σ_n dY_n [Cout, L] · cols_nᵀ [L, Cin·K]
    const perSample = em.op('MatMul', [em.reshape(gout, [0, cout, -1]), em.transpose(em.reshape(cols, [0, cin * K, -1]), [0, 2, 1])]);
    return em.reshape(em.reduceSum(perSample, [0], false), [cout, cin, ...geo.kernel]);
  }
  const attrs: Record<string, Attr> = { strides: attr.ints(geo.dilations), dilations: attr.ints(geo.strides), pads: attr.ints(pads) };
  const dyT = em.transpose(gout, perm);
  let out: Value;
  if (group === 1) out = em.op('Conv', [em.transpose(input, perm), dyT], attrs);
  else {
    const xr = em.reshape(em.transpose(input, perm), [1, -1, ...geo.input]);
    let kernel = dyT;
    if (cinG !== 1 || coutG !== 1) {
      const idx: number[] = [];
      for (let c = 0; c < cin; c++) for (let m = 0; m < coutG; m++) idx.push(Math.floor(c / cinG) * coutG + m);
      kernel = em.op('Gather', [dyT, em.i64(idx)], { axis: attr.int(0) });
    }
    out = em.op('Conv', [xr, kernel], { ...attrs, group: attr.int(cin) });
  }
  if (sizes.some((kk, i) => kk !== geo.kernel[i])) {
    const axes = Array.from({ length: r }, (_, i) => i + 2);
    out = em.op('Slice', [out, em.i64(axes.map(() => 0)), em.i64(geo.kernel), em.i64(axes)]);
  }
  if (group === 1) return em.transpose(out, perm);
  if (cinG === 1) return em.reshape(out, [cout, 1, ...geo.kernel]);
  const grouped = em.reshape(out, [group, cinG, coutG, ...geo.kernel]);
  return em.reshape(em.transpose(grouped, [0, 2, 1, ...Array.from({ length: r }, (_, i) => i + 3)]), [cout, cinG, ...geo.kernel]);
}

/**
 * Conv (any spatial rank; groups, depthwise, strides, pads, dilations, auto_pad):
 * dX = ConvTranspose(dY, W) with the same geometry (cheapest in the probe; a flipped-kernel Conv was slower),
 * dW = `convWeightGrad` (im2col + MatMul, or a Conv of Xᵀ with dYᵀ), dB = ReduceSum(dY) over all axes but the channels. Needs fixed spatial dims.
 */
export const Conv: GradRule = {
  differentiable: () => [0, 1, 2],
  check: (node, em) => {
    const wDims = em.staticDims(node.input(1), 'the weight');
    convGeometry(em, node, node.input(0), wDims.slice(2));
    return undefined;
  },
  backward: ({ node, em, dy, needs }) => {
    const [x, w] = [node.input(0), node.input(1)];
    const g = dy()!;
    const wDims = em.staticDims(w, 'the weight');
    const group = node.getInt('group', 1);
    const geo = convGeometry(em, node, x, wDims.slice(2));
    const r = geo.kernel.length;
    return [
      needs(0) ? em.op('ConvTranspose', [g, w], convTransposeAttrs(geo, group)) : null,
      needs(1) ? convWeightGrad(em, x, g, geo, group, wDims) : null,
      needs(2) ? em.reduceSum(g, [0, ...Array.from({ length: r }, (_, i) => i + 2)], false) : null,
    ];
  },
};
