/**
 * `MatMul` -> QLinearMatMul (with a Q after it) or MatMulIntegerToFloat (without): `DQ(A), DQ(B) -> MatMul -> [Q]`.
 * A constant 2-D B ([K, N]) is an int8 weight per column (axis 1); a constant B of other rank is per tensor. A
 * constant A, or a B computed at run time, is quantized like an activation (uint8), as onnxruntime requires A and B
 * of equal types unless B is the weight.
 */
import type { OpHandler, WeightPlan } from './table.js';

/**
 * The MatMul handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.MatMul.plan(ctx).weights; // [{ input: 1, kind: 'weight', axis: 1 }] for a [K, N] weight
 * ```
 */
export const MatMul: OpHandler = {
  opType: 'MatMul',
  plan(ctx) {
    const { node } = ctx;
    const activations: number[] = [];
    const weights: WeightPlan[] = [];
    const a = ctx.floatConstant(node.inputs[0]);
    const b = ctx.floatConstant(node.inputs[1]);
    if (a && b) return ctx.float('unsupported-shape', 'both inputs are constants (fold them first)');
    if (a) weights.push({ input: 0, kind: 'activation' });
    else if (ctx.isFloatActivation(node.inputs[0])) activations.push(0);
    else return ctx.float('unsupported-shape', 'its input A is not float32');
    if (b) weights.push(a ? { input: 1, kind: 'activation' } : { input: 1, kind: 'weight', axis: b.dims.length === 2 ? 1 : undefined });
    else if (ctx.isFloatActivation(node.inputs[1])) activations.push(1);
    else return ctx.float('unsupported-shape', 'its input B is not float32');
    return { quantize: true, activations, weights, output: { kind: 'own', required: false, absorbsActivation: true } };
  },
};
