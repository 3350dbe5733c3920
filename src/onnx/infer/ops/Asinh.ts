import { sameAsInput } from '../rules.js';

/** Asinh: y = asinh x: the type and shape of input 0. */
export const Asinh = sameAsInput(0);
