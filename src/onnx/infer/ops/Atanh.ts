import { sameAsInput } from '../rules.js';

/** Atanh: y = atanh x: the type and shape of input 0. */
export const Atanh = sameAsInput(0);
