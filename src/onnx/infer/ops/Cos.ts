import { sameAsInput } from '../rules.js';

/** Cos: y = cos x: the type and shape of x. */
export const Cos = sameAsInput(0);
