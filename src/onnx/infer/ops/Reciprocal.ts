import { sameAsInput } from '../rules.js';

/** Reciprocal: y = 1 / x: the type and shape of x. */
export const Reciprocal = sameAsInput(0);
