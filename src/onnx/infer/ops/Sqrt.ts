import { sameAsInput } from '../rules.js';

/** Sqrt: y = √x: the type and shape of x. */
export const Sqrt = sameAsInput(0);
