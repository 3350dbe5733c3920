/**
 * What an op handler sees: the node, the opset its domain is imported at, its inputs' types and, for small
 * constant or shape-carrying inputs, their element values ("partial values": each element a number, a symbol
 * such as "batch" taken from a Shape, or null).
 */
import { GraphError } from '../../errors.js';
import type { DType } from '../dtype.js';
import type { Dim, Node, Value } from '../ir.js';
import type { Tensor } from '../tensor.js';
import { formatShape } from './dims.js';

/** What a handler infers for one output. Without an elemType the output stays unknown. */
export interface Inferred {
  elemType?: DType;
  /** Undefined when the rank is unknown. */
  shape?: readonly Dim[];
  /** The elements, when this output is a small tensor of rank 0 or 1 whose values are (partly) known. */
  value?: readonly Dim[];
}

/** An op's inference rule: one entry per output (missing entries leave those outputs unknown). */
export type Handler = (ctx: InferContext) => readonly (Inferred | undefined)[];

/** Element type and shape of a value: its declared or inferred type, else its initializer's; undefined when unknown. */
export function typeOf(v: Value): Inferred | undefined {
  const t = v.type && v.type.kind !== 'other' ? v.type : undefined;
  if (v.initializer && !t?.shape) return { elemType: t?.elemType ?? v.initializer.dtype, shape: v.initializer.dims };
  return t && (t.elemType || t.shape) ? { elemType: t.elemType, shape: t.shape } : undefined;
}

/** Dtypes whose typed array holds the element values themselves (not raw bits of a packed or 16-bit float). */
const PLAIN = new Set<DType>(['float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool']);

/** The elements of a small tensor of rank 0 or 1 as numbers, or undefined (too big, higher rank, or not plain numeric). */
export function tensorElements(t: Tensor): number[] | undefined {
  if (t.dims.length > 1 || t.size > MAX_VALUE_ELEMENTS || !PLAIN.has(t.dtype)) return undefined;
  return t.toNumbers();
}

/** Partial values are kept only for tensors this small (shape vectors, slice bounds, scales). */
export const MAX_VALUE_ELEMENTS = 1024;

/** Reads partial values of values (constants and propagated shape tensors); supplied by the walk. */
export type ValueLookup = (v: Value) => readonly Dim[] | undefined;

/**
 * The view a handler gets of one node.
 *
 * @example
 * ```ts
 * const Relu: Handler = (ctx) => [ctx.type(0)];
 * const Squeeze: Handler = (ctx) => { const axes = ctx.opset >= 13 ? ctx.numbers(1) : ctx.node.getInts('axes', []); … };
 * ```
 */
export class InferContext {
  constructor(
    readonly node: Node,
    /** The opset imported for the node's domain. */
    readonly opset: number,
    private readonly lookup: ValueLookup,
  ) {}

  /** Input `i`, or null when omitted. */
  input(i: number): Value | null {
    return this.node.inputs[i] ?? null;
  }

  /** Whether input `i` is given (not omitted). */
  has(i: number): boolean {
    return this.input(i) !== null;
  }

  /** Element type and shape of input `i` (initializers included), or undefined when omitted or untyped. */
  type(i: number): Inferred | undefined {
    const v = this.input(i);
    return v ? typeOf(v) : undefined;
  }

  shape(i: number): readonly Dim[] | undefined {
    return this.type(i)?.shape;
  }

  elemType(i: number): DType | undefined {
    return this.type(i)?.elemType;
  }

  /** Known elements of input `i` (rank 0 or 1), each a number, a symbol or null. */
  value(i: number): readonly Dim[] | undefined {
    const v = this.input(i);
    return v ? this.lookup(v) : undefined;
  }

  /** The elements of input `i` when every one is a known number. */
  numbers(i: number): number[] | undefined {
    const value = this.value(i);
    return value?.every((d): d is number => typeof d === 'number') ? [...value] : undefined;
  }

  /**
   * The elements of a 1-D shape-like input: its partial value, or as many nulls as its length when only the length
   * is known; undefined when neither is.
   */
  elements(i: number): readonly Dim[] | undefined {
    const value = this.value(i);
    if (value) return value;
    const len = this.shape(i)?.[0];
    return typeof len === 'number' && this.shape(i)!.length === 1 ? Array<Dim>(len).fill(null) : undefined;
  }

  /** `input "x" [1, 3, 224, 224]`, for messages. */
  describe(i: number): string {
    const v = this.input(i);
    return v ? `input "${v.name}" ${formatShape(this.shape(i))}` : `input ${i} (omitted)`;
  }

  /** Throws a GraphError naming this node. */
  fail(message: string): never {
    throw new GraphError(`${this.node}: ${message}`);
  }

  /** An axis in [-rank, rank) made non-negative; out of range is an error naming the node. */
  axis(axis: number, rank: number, what = 'axis'): number {
    if (!Number.isInteger(axis) || axis < -rank || axis >= rank) this.fail(`${what} ${axis} is out of range for rank ${rank}`);
    return axis < 0 ? axis + rank : axis;
  }
}
