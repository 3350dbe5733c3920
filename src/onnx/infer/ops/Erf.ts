import { sameAsInput } from '../rules.js';

/** Erf: y = erf(x): the type and shape of x. */
export const Erf = sameAsInput(0);
