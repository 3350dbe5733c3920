import { sameAsInput } from '../rules.js';

/** Relu: y = max(x, 0): the type and shape of x. */
export const Relu = sameAsInput(0);
