import { sameAsInput } from '../rules.js';

/** Mish: y = x · tanh(softplus(x)): the type and shape of x. */
export const Mish = sameAsInput(0);
