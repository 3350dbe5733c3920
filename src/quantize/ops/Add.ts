/**
 * `Add` -> QLinearAdd (com.microsoft): `DQ(A), DQ(B) -> Add -> [Relu | Clip] -> Q` (see `binary.ts`).
 */
import { binaryArithmetic } from './binary.js';

/**
 * The Add handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Add.plan(ctx); // { quantize: true, activations: [0, 1], … }
 * ```
 */
export const Add = binaryArithmetic('Add');
