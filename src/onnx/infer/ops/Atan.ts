import { sameAsInput } from '../rules.js';

/** Atan: y = atan x: the type and shape of input 0. */
export const Atan = sameAsInput(0);
