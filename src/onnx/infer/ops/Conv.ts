import type { Handler } from '../context.js';
import { convShape } from '../rules.js';

/** Conv: x [N, C, ...d] ⊛ w [M, C/group, ...k] → [N, M, ...windows] with x's type. */
export const Conv: Handler = (ctx) => [{ elemType: ctx.elemType(0), shape: convShape(ctx, 0, 1) }];
