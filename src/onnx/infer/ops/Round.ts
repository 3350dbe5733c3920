import { sameAsInput } from '../rules.js';

/** Round: y = x rounded half to even: the type and shape of x. */
export const Round = sameAsInput(0);
