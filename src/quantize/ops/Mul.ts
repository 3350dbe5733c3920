/**
 * `Mul` -> QLinearMul (com.microsoft): `DQ(A), DQ(B) -> Mul -> [Relu | Clip] -> Q` (see `binary.ts`).
 */
import { binaryArithmetic } from './binary.js';

/**
 * The Mul handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Mul.plan(ctx); // { quantize: true, activations: [0, 1], … }
 * ```
 */
export const Mul = binaryArithmetic('Mul');
