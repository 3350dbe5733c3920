/** Assertions the test files share. */
import { expect } from 'chai';

/**
 * Awaits `p` (or calls it) and checks that it fails with an error of class `cls` whose message matches `re`;
 * returns the error for further checks.
 */
export async function rejects(p: Promise<unknown> | (() => unknown), cls: new (...a: never[]) => Error, re: RegExp): Promise<Error> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).to.be.instanceOf(cls);
    expect((e as Error).message).to.match(re);
    return e as Error;
  }
  return expect.fail(`expected a ${cls.name} matching ${re}`);
}

/** The largest |got − want| over the largest |want|: the error relative to the reference's scale. */
export function relErr(got: ArrayLike<number>, want: readonly number[]): number {
  let diff = 0;
  let scale = 0;
  want.forEach((w, i) => {
    diff = Math.max(diff, Math.abs(got[i]! - w));
    scale = Math.max(scale, Math.abs(w));
  });
  return diff / scale;
}
