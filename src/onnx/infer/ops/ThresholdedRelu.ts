import { sameAsInput } from '../rules.js';

/** ThresholdedRelu: y = x > alpha ? x : 0: the type and shape of x. */
export const ThresholdedRelu = sameAsInput(0);
