import { sameAsInput } from '../rules.js';

/** Sigmoid: y = 1 / (1 + e^−x): the type and shape of x. */
export const Sigmoid = sameAsInput(0);
