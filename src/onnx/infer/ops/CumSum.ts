import { sameAsInput } from '../rules.js';

/** CumSum: y = cumulative sum of x along axis: the type and shape of x. */
export const CumSum = sameAsInput(0);
