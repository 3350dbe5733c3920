import { sameAsInput } from '../rules.js';

/** Cosh: y = cosh x: the type and shape of input 0. */
export const Cosh = sameAsInput(0);
