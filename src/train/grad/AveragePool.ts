import { attr, type Node, type Value } from '../../onnx/ir.js';
import { Tensor } from '../../onnx/tensor.js';
import type { Emitter } from '../graph.js';
import { convGeometry, convTransposeAttrs, type ConvGeometry } from './Conv.js';
import type { GradRule } from './table.js';

function geometry(em: Emitter, node: Node): ConvGeometry {
  return convGeometry(em, node, node.input(0), node.getInts('kernel_shape'));
}

/** Whether ceil_mode gives a different output size than floor mode would (then partial windows exist: no rule). */
function ceilChangesSize(node: Node, geo: ConvGeometry): boolean {
  if (node.getInt('ceil_mode', 0) !== 1) return false;
  const r = geo.kernel.length;
  return geo.input.some((n, i) => (n + geo.pads[i]! + geo.pads[i + r]! - (geo.kernel[i]! - 1) * geo.dilations[i]! - 1) % geo.strides[i]! !== 0);
}

/**
 * AveragePool: each output's gradient, divided by its window's divisor, spread over its window by a depthwise
 * ConvTranspose with a ones kernel (group = C). The divisor is k (the kernel's element count) with
 * `count_include_pad` or without pads; otherwise the number of real (unpadded) elements in each window, computed
 * here from the geometry as a constant map. Needs fixed spatial dims and channels; ceil_mode only where it does not
 * change the output size.
 */
export const AveragePool: GradRule = {
  differentiable: () => [0],
  check: (node, em) => {
    const geo = geometry(em, node);
    if (ceilChangesSize(node, geo)) return 'ceil_mode adds partial windows (no rule for those)';
    const c = em.shape(node.input(0))[1];
    return typeof c === 'number' ? undefined : 'needs a fixed channel count';
  },
  backward: ({ node, em, dy }) => {
    const x = node.input(0);
    const geo = geometry(em, node);
    const r = geo.kernel.length;
    const C = em.shape(x)[1] as number;
    const area = geo.kernel.reduce((p, k) => p * k, 1);
    const padded = geo.pads.some((p) => p !== 0);
    let scaled: Value;
    if (node.getInt('count_include_pad', 0) === 1 || !padded) scaled = em.scale(dy()!, 1 / area);
    else {
      const total = geo.output.reduce((p, d) => p * d, 1);
      const map = new Float32Array(total);
      const o = new Array<number>(r).fill(0);
      for (let flat = 0; flat < total; flat++) {
        let count = 1;
        for (let i = 0; i < r; i++) {
          let inside = 0;
          for (let j = 0; j < geo.kernel[i]!; j++) {
            const at = o[i]! * geo.strides[i]! - geo.pads[i]! + j * geo.dilations[i]!;
            if (at >= 0 && at < geo.input[i]!) inside++;
          }
          count *= inside;
        }
        map[flat] = 1 / count;
        for (let i = r - 1; i >= 0; i--) {
          if (++o[i]! < geo.output[i]!) break;
          o[i] = 0;
        }
      }
      scaled = em.mul(dy()!, em.constant(Tensor.from('float32', [1, 1, ...geo.output], map), 'train/avgpool_divisors'));
    }
    const ones = em.constant(Tensor.from('float32', [C, 1, ...geo.kernel], new Float32Array(C * area).fill(1)), 'train/avgpool_ones');
    return [em.op('ConvTranspose', [scaled, ones], { ...convTransposeAttrs(geo, C), group: attr.int(C) })];
  },
};
