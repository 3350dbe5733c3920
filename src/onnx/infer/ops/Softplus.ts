import { sameAsInput } from '../rules.js';

/** Softplus: y = ln(1 + e^x): the type and shape of x. */
export const Softplus = sameAsInput(0);
