import type { Handler } from '../context.js';
import { scaleDim } from '../dims.js';
import { expectLength } from '../rules.js';

/** Tile: x's dims times `repeats`, axis by axis (a dim of 1 takes the repeat, symbols included). */
export const Tile: Handler = (ctx) => {
  const x = ctx.type(0);
  const repeats = ctx.elements(1);
  if (!x?.shape) return [{ elemType: x?.elemType }];
  if (!repeats) return [{ elemType: x.elemType, shape: x.shape.map((d) => (d === 0 ? 0 : null)) }];
  expectLength(ctx, 'repeats', repeats, x.shape.length);
  return [{ elemType: x.elemType, shape: x.shape.map((d, i) => (d === 1 ? repeats[i] : typeof repeats[i] === 'number' ? scaleDim(d, repeats[i] as number) : null)) }];
};
