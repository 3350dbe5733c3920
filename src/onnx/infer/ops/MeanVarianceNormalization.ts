import { sameAsInput } from '../rules.js';

/** MeanVarianceNormalization: y = (x − mean) / std over axes: the type and shape of x. */
export const MeanVarianceNormalization = sameAsInput(0);
