import { sameAsInput } from '../rules.js';

/** Sign: y = sign(x): the type and shape of x. */
export const Sign = sameAsInput(0);
