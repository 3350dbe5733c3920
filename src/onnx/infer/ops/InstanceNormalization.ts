import { sameAsInput } from '../rules.js';

/** InstanceNormalization: y = scale·(x − mean)/√(var + ε) + B per instance and channel: the type and shape of x. */
export const InstanceNormalization = sameAsInput(0);
