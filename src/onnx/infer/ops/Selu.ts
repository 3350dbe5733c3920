import { sameAsInput } from '../rules.js';

/** Selu: y = gamma · Elu(x, alpha): the type and shape of x. */
export const Selu = sameAsInput(0);
