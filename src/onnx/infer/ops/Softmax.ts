import { sameAsInput } from '../rules.js';

/** Softmax: y = softmax(x) along axis: the type and shape of x. */
export const Softmax = sameAsInput(0);
