import type { GradRule } from './table.js';

/**
 * Pad, constant mode: dX = Pad(dY, −pads) — negative pads crop what the forward added, and where the forward
 * cropped (negative pads) the gradient is zero-filled. `axes` (opset ≥ 18) is passed on. Edge, reflect and wrap
 * modes have no rule.
 */
export const Pad: GradRule = {
  differentiable: () => [0],
  check: (node) => {
    const mode = node.getString('mode', 'constant');
    return mode === 'constant' ? undefined : `mode "${mode}" (only "constant" has a gradient rule)`;
  },
  backward: ({ node, em, dy }) => {
    const pads = node.input(1);
    const known = em.constantOf(pads);
    const negated = known ? em.i64(known.map((p) => -p)) : em.op('Neg', [pads]);
    const axes = node.inputs[3] ?? null;
    return [em.op('Pad', axes ? [dy()!, negated, null, axes] : [dy()!, negated])];
  },
};
