/**
 * What Add and Mul share: `Op` -> QLinearOp (com.microsoft): `DQ(A), DQ(B) -> Op -> [Relu | Clip] -> Q`.
 * onnxruntime wants both inputs of the output's type, so a constant input is stored as an activation-type (uint8)
 * tensor with its own params. Broadcasting is the kernel's.
 */
import type { OpHandler, WeightPlan } from './table.js';

/** The handler of a binary arithmetic op with a QLinear form (Add, Mul). */
export function binaryArithmetic(opType: 'Add' | 'Mul'): OpHandler {
  return {
    opType,
    plan(ctx) {
      const activations: number[] = [];
      const weights: WeightPlan[] = [];
      for (const i of [0, 1]) {
        const v = ctx.node.inputs[i];
        if (ctx.floatConstant(v)) weights.push({ input: i, kind: 'activation' });
        else if (ctx.isFloatActivation(v)) activations.push(i);
        else return ctx.float('unsupported-shape', `its input ${i} is not float32`);
      }
      if (!activations.length) return ctx.float('unsupported-shape', 'both inputs are constants (fold them first)');
      return { quantize: true, activations, weights, output: { kind: 'own', required: true, absorbsActivation: true } };
    },
  };
}
