import { attr, type Node } from '../../onnx/ir.js';
import type { Emitter } from '../graph.js';
import { convWeightGrad, type ConvGeometry } from './Conv.js';
import type { GradRule } from './table.js';

/** ConvTranspose's geometry seen as the convolution it is the adjoint of (from Y's grid to X's). */
function adjointGeometry(em: Emitter, node: Node): { geo: ConvGeometry; wDims: number[]; group: number } {
  const [x, w, y] = [node.input(0), node.input(1), node.output(0)];
  const wDims = em.staticDims(w, 'the weight');
  const kernel = wDims.slice(2);
  const r = kernel.length;
  const ones = new Array<number>(r).fill(1);
  const spatial = (v: typeof x) => em.staticDims(v).slice(2);
  const geo: ConvGeometry = {
    kernel,
    strides: node.getInts('strides', ones),
    dilations: node.getInts('dilations', ones),
    pads: node.getString('auto_pad', 'NOTSET') === 'VALID' ? new Array<number>(2 * r).fill(0) : node.getInts('pads', new Array<number>(2 * r).fill(0)),
    input: spatial(y),
    output: spatial(x),
  };
  return { geo, wDims, group: node.getInt('group', 1) };
}

/**
 * ConvTranspose, the adjoint of Conv(W): dX = Conv(dY, W) with the same strides, pads, dilations and group (it lands
 * exactly on X's grid: output_padding only adds rows no window of that Conv reads); dW is Conv's weight gradient
 * with the roles swapped (dY as the input, X as the output gradient); dB = ReduceSum(dY). Pads must be explicit:
 * `output_shape` and SAME auto_pad have no rule.
 */
export const ConvTranspose: GradRule = {
  differentiable: () => [0, 1, 2],
  check: (node, em) => {
    if (node.getAttr('output_shape')) return 'output_shape is set (give pads and output_padding instead)';
    const autoPad = node.getString('auto_pad', 'NOTSET');
    if (autoPad !== 'NOTSET' && autoPad !== 'VALID') return `auto_pad "${autoPad}" (only explicit pads have a gradient rule)`;
    adjointGeometry(em, node);
    return undefined;
  },
  backward: ({ node, em, dy, needs }) => {
    const { geo, wDims, group } = adjointGeometry(em, node);
    const g = dy()!;
    const r = geo.kernel.length;
    const convAttrs = { kernel_shape: attr.ints(geo.kernel), strides: attr.ints(geo.strides), dilations: attr.ints(geo.dilations), pads: attr.ints(geo.pads), group: attr.int(group) };
    return [
      needs(0) ? em.op('Conv', [g, node.input(1)], convAttrs) : null,
      needs(1) ? convWeightGrad(em, g, node.input(0), geo, group, wDims) : null,
      needs(2) ? em.reduceSum(g, [0, ...Array.from({ length: r }, (_, i) => i + 2)], false) : null,
    ];
  },
};
