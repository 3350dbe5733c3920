import { sameAsInput } from '../rules.js';

/** Shrink: y = x < −lambd ? x + bias : x > lambd ? x − bias : 0: the type and shape of x. */
export const Shrink = sameAsInput(0);
