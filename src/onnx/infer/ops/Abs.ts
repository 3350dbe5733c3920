import { sameAsInput } from '../rules.js';

/** Abs: y = |x|: the type and shape of x. */
export const Abs = sameAsInput(0);
