import { sameAsInput } from '../rules.js';

/** LRN: y = x / (bias + alpha/size · Σ x² over nearby channels)^beta: the type and shape of x. */
export const LRN = sameAsInput(0);
