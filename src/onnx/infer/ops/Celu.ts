import { sameAsInput } from '../rules.js';

/** Celu: y = max(0, x) + min(0, alpha·(e^(x/alpha) − 1)): the type and shape of x. */
export const Celu = sameAsInput(0);
