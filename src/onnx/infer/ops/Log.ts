import { sameAsInput } from '../rules.js';

/** Log: y = ln x: the type and shape of x. */
export const Log = sameAsInput(0);
