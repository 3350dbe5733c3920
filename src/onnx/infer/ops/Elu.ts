import { sameAsInput } from '../rules.js';

/** Elu: y = x < 0 ? alpha·(e^x − 1) : x: the type and shape of x. */
export const Elu = sameAsInput(0);
