import { attr, type Node } from '../../onnx/ir.js';
import { Tensor } from '../../onnx/tensor.js';
import type { Emitter } from '../graph.js';
import { convGeometry, type ConvGeometry } from './Conv.js';
import type { GradRule } from './table.js';

/** Whether every input element is in at most one window (kernel = stride, no pads or dilation, no ceil-mode windows). */
function disjoint(node: Node, geo: ConvGeometry): boolean {
  const ceil = node.getInt('ceil_mode', 0) === 1;
  return geo.kernel.every(
    (k, i) => k === geo.strides[i] && geo.dilations[i] === 1 && geo.pads[i] === 0 && geo.pads[i + geo.kernel.length] === 0 && (!ceil || geo.input[i]! % k === 0),
  );
}

function geometry(em: Emitter, node: Node): ConvGeometry {
  return convGeometry(em, node, node.input(0), node.getInts('kernel_shape'));
}

/**
 * MaxPool. Tied maxima are common (flat image backgrounds, zeros after Relu), and a plain `X == upsample(Y)` mask
 * sends the whole gradient to every tied element (the probe's trap), so:
 * 1. disjoint windows (kernel = stride, no pads, no dilation): the gradient of each window is split evenly across
 *    its tied maxima — mask = (X == Resize(Y)), count = AveragePool(mask)·k, dX = mask·Resize(dY/count) (nearest
 *    Resize: the fastest 2× upsampling measured). Rows and columns no window covers get zero.
 * 2. overlapping windows: the forward hook asks MaxPool for its Indices (flat over N·C·H·W, so taken modulo H·W),
 *    and dX = ScatterElements(zeros, Indices, dY, reduction="add") — one element per window, as PyTorch does;
 *    exact, but MaxPool with Indices takes a slower kernel.
 */
export const MaxPool: GradRule = {
  differentiable: () => [0],
  check: (node, em) => {
    if (node.getInt('storage_order', 0) !== 0) return 'storage_order 1 (column-major Indices)';
    geometry(em, node);
    return undefined;
  },
  forward: ({ node, em, needsBackward }) => {
    if (!needsBackward || disjoint(node, geometry(em, node))) return undefined;
    if (node.outputs[1]) return { saved: { indices: node.outputs[1] } };
    const twin = em.node('MaxPool', node.inputs, Object.fromEntries(node.attributes), 2);
    const y = node.output(0);
    twin.output(0).type = y.type;
    y.replaceAllUsesWith(twin.output(0));
    em.graph.removeNode(node, { force: true });
    return { node: twin, saved: { indices: twin.output(1) } };
  },
  backward: ({ node, em, dy, saved }) => {
    const [x, y] = [node.input(0), node.output(0)];
    const g = dy()!;
    const geo = geometry(em, node);
    const r = geo.kernel.length;
    const spatialAxes = Array.from({ length: r }, (_, i) => i + 2);
    if (saved.indices) {
      // (2)
      const plane = geo.input.reduce((p, d) => p * d, 1);
      const index = em.reshape(em.op('Mod', [saved.indices, em.i64([plane], [])]), [0, 0, -1]);
      const zeros = em.op('ConstantOfShape', [em.op('Shape', [em.reshape(x, [0, 0, -1])])], { value: attr.tensor(Tensor.from('float32', [1], [0])) });
      const flat = em.op('ScatterElements', [zeros, index, em.reshape(g, [0, 0, -1])], { axis: attr.int(2), reduction: attr.string('add') });
      return [em.reshape(flat, em.shapeOf(x))];
    }
    // (1)
    const covered = geo.output.map((o, i) => o * geo.kernel[i]!);
    const crop = covered.some((c, i) => c !== geo.input[i]);
    const xc = crop ? em.op('Slice', [x, em.i64(spatialAxes.map(() => 0)), em.i64(covered), em.i64(spatialAxes)]) : x;
    const scales = em.f32([1, 1, ...geo.kernel]);
    const up = (v: typeof x) =>
      em.op('Resize', [v, null, scales], { mode: attr.string('nearest'), coordinate_transformation_mode: attr.string('asymmetric'), nearest_mode: attr.string('floor') });
    const mask = em.cast(em.op('Equal', [xc, up(y)]), 'float32');
    const fraction = em.op('AveragePool', [mask], { kernel_shape: attr.ints(geo.kernel), strides: attr.ints(geo.kernel) });
    const area = geo.kernel.reduce((p, k) => p * k, 1);
    const share = em.div(em.scale(g, 1 / area), fraction);
    const dxc = em.mul(mask, up(share));
    if (!crop) return [dxc];
    const pads = [0, 0, ...spatialAxes.map(() => 0), 0, 0, ...covered.map((c, i) => geo.input[i]! - c)];
    return [em.op('Pad', [dxc, em.i64(pads)])];
  },
};
