import { sameAsInput } from '../rules.js';

/** Hardmax: y = one-hot of the max along axis: the type and shape of x. */
export const Hardmax = sameAsInput(0);
