import { sameAsInput } from '../rules.js';

/** Tanh: y = tanh(x): the type and shape of x. */
export const Tanh = sameAsInput(0);
