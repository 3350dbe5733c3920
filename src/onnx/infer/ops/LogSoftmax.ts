import { sameAsInput } from '../rules.js';

/** LogSoftmax: y = log(softmax(x)) along axis: the type and shape of x. */
export const LogSoftmax = sameAsInput(0);
