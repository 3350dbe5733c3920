/**
 * Training checkpoints as bytes: everything `train` needs to resume exactly where an epoch ended (parameters,
 * BatchNormalization buffers, optimizer slots, the random generator's state, history, the best weights so far).
 * Pure functions: the CLI writes the bytes to a file (atomically); the library never touches the file system.
 *
 * Layout: the 16 ASCII bytes `ONNXPRESS-CKPT1\n`, a little-endian uint32 header length, the header as UTF-8 JSON
 * (every Float32Array replaced by `{"$f32": [offset, length]}`), zero padding to a multiple of 4, then the float32
 * data (little-endian), each array at a 4-byte-aligned offset into the data section.
 */
import { LoadError } from '../errors.js';

const MAGIC = 'ONNXPRESS-CKPT1\n';

/**
 * Encodes a plain-data value whose leaves are JSON values and Float32Arrays.
 *
 * @example
 * ```ts
 * const bytes = encodeCheckpoint(state);
 * const back = decodeCheckpoint<TrainState>(bytes);
 * ```
 */
export function encodeCheckpoint(value: unknown): Uint8Array {
  const arrays: Float32Array[] = [];
  let size = 0;
  const header = JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Float32Array) {
      arrays.push(v);
      const at = size;
      size += v.length;
      return { $f32: [at, v.length] };
    }
    if (typeof v === 'number' && !Number.isFinite(v)) return { $num: String(v) };
    if (ArrayBuffer.isView(v)) throw new LoadError(`Checkpoints hold float32 arrays only, found a ${v.constructor.name}`);
    return v;
  });
  const head = new TextEncoder().encode(header);
  const dataStart = Math.ceil((MAGIC.length + 4 + head.length) / 4) * 4;
  const out = new Uint8Array(dataStart + size * 4);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(MAGIC.length, head.length, true);
  out.set(head, MAGIC.length + 4);
  const data = new DataView(out.buffer, dataStart);
  let at = 0;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) data.setFloat32((at + i) * 4, a[i]!, true);
    at += a.length;
  }
  return out;
}

/**
 * Decodes bytes made by `encodeCheckpoint`. Bad magic, truncation or a malformed header give a LoadError naming
 * `source` (the file, when the caller knows it).
 */
export function decodeCheckpoint<T = unknown>(bytes: Uint8Array, source = 'checkpoint'): T {
  const bad = (why: string) => new LoadError(`${source} is not an onnxpress training checkpoint: ${why}`);
  if (bytes.length < MAGIC.length + 4 || new TextDecoder().decode(bytes.subarray(0, MAGIC.length)) !== MAGIC) throw bad('it does not start with "ONNXPRESS-CKPT1"');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headLen = view.getUint32(MAGIC.length, true);
  if (MAGIC.length + 4 + headLen > bytes.length) throw bad(`its header (${headLen} bytes) runs past the end of the file (${bytes.length} bytes)`);
  const dataStart = Math.ceil((MAGIC.length + 4 + headLen) / 4) * 4;
  const floats = Math.max(0, Math.floor((bytes.length - dataStart) / 4));
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, MAGIC.length + 4 + headLen)), (_k, v: unknown) => {
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        const o = v as Record<string, unknown>;
        if (Array.isArray(o.$f32)) {
          const [at, len] = o.$f32 as [number, number];
          if (!Number.isSafeInteger(at) || !Number.isSafeInteger(len) || at < 0 || len < 0 || at + len > floats) {
            throw bad(`an array at [${at}, ${at + len}) lies outside its ${floats} float32 values (truncated?)`);
          }
          const a = new Float32Array(len);
          for (let i = 0; i < len; i++) a[i] = view.getFloat32(dataStart + (at + i) * 4, true);
          return a;
        }
        if (typeof o.$num === 'string') return Number(o.$num);
      }
      return v;
    });
  } catch (e) {
    if (e instanceof LoadError) throw e;
    throw bad(`its header is not valid JSON (${(e as Error).message})`);
  }
  return parsed as T;
}
