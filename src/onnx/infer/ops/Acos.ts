import { sameAsInput } from '../rules.js';

/** Acos: y = acos x: the type and shape of input 0. */
export const Acos = sameAsInput(0);
