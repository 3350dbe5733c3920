import { sameAsInput } from '../rules.js';

/** Gelu: y = x · Φ(x) (exact or tanh approximation): the type and shape of x. */
export const Gelu = sameAsInput(0);
