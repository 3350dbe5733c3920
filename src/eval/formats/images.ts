/**
 * Image decoding (PNG via `pngjs`, JPEG via `jpeg-js`) and the two pixel operations datasets need: grayscale ↔ RGB
 * conversion and bilinear resizing. Pixels are interleaved HWC.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { LoadError, expected } from '../../errors.js';
import { hexBytes } from './raw.js';

/** A decoded 8-bit image, HWC, with 1 (gray) or 3 (RGB) channels; alpha is dropped. */
export interface DecodedImage {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];

/** Decodes a PNG or JPEG (recognised by content, not extension). 16-bit PNGs are scaled to 8 bits. */
export function decodeImage(buf: Buffer, file: string): DecodedImage {
  if (PNG_MAGIC.every((b, i) => buf[i] === b)) {
    let png: ReturnType<typeof PNG.sync.read>;
    try {
      png = PNG.sync.read(buf);
    } catch (e) {
      throw new LoadError(`${file} is not a readable PNG (truncated or corrupt): ${(e as Error).message}`, { cause: e });
    }
    const { width, height, data } = png;
    const gray = png.colorType === 0 || png.colorType === 4;
    const channels = gray ? 1 : 3;
    const out = new Uint8Array(width * height * channels);
    for (let p = 0, q = 0; p < width * height; p++) {
      out[q++] = data[p * 4]!;
      if (!gray) {
        out[q++] = data[p * 4 + 1]!;
        out[q++] = data[p * 4 + 2]!;
      }
    }
    return { width, height, channels, data: out };
  }
  if (buf[0] === 0xff && buf[1] === 0xd8) {
    let img: { width: number; height: number; data: Uint8Array };
    try {
      img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 2048 });
    } catch (e) {
      throw new LoadError(`${file} is not a readable JPEG (truncated or corrupt): ${(e as Error).message}`, { cause: e });
    }
    return { width: img.width, height: img.height, channels: 3, data: img.data };
  }
  throw new LoadError(`${file} is not a PNG or JPEG image: ${expected('the PNG (89 50 4e 47) or JPEG (ff d8) magic bytes', 'its first bytes', hexBytes(buf))}`);
}

/**
 * Converts HWC pixels between 1 and 3 channels: gray → RGB copies the value, RGB → gray uses ITU-R 601-2 luma
 * (0.299 R + 0.587 G + 0.114 B). With `round`, results are rounded the way PIL's `convert('L')` does.
 */
export function convertChannels(src: ArrayLike<number>, pixels: number, from: number, to: number, round: boolean): Float64Array {
  const out = new Float64Array(pixels * to);
  if (from === to) {
    for (let i = 0; i < out.length; i++) out[i] = src[i]!;
  } else if (from === 1 && to === 3) {
    for (let p = 0; p < pixels; p++) out[3 * p] = out[3 * p + 1] = out[3 * p + 2] = src[p]!;
  } else if (from === 3 && to === 1) {
    for (let p = 0; p < pixels; p++) {
      const r = src[3 * p]!, g = src[3 * p + 1]!, b = src[3 * p + 2]!;
      out[p] = round ? (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16 : 0.299 * r + 0.587 * g + 0.114 * b;
    }
  } else {
    throw new RangeError(`cannot convert ${from} channels to ${to}`);
  }
  return out;
}

/**
 * Bilinear resize of HWC pixels with half-pixel centres (PyTorch `align_corners=False`, OpenCV `INTER_LINEAR`),
 * without antialiasing. Returns unrounded values.
 */
export function resizeBilinear(src: ArrayLike<number>, h: number, w: number, c: number, outH: number, outW: number): Float64Array {
  const out = new Float64Array(outH * outW * c);
  if (h === outH && w === outW) {
    for (let i = 0; i < out.length; i++) out[i] = src[i]!;
    return out;
  }
  const sy = h / outH, sx = w / outW;
  const x0s = new Int32Array(outW), x1s = new Int32Array(outW), fxs = new Float64Array(outW);
  for (let x = 0; x < outW; x++) {
    const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
    x0s[x] = Math.floor(fx);
    x1s[x] = Math.min(x0s[x]! + 1, w - 1);
    fxs[x] = fx - x0s[x]!;
  }
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, h - 1), wy = fy - y0;
    for (let x = 0; x < outW; x++) {
      const x0 = x0s[x]!, x1 = x1s[x]!, wx = fxs[x]!;
      for (let k = 0; k < c; k++) {
        const a = src[(y0 * w + x0) * c + k]!, b = src[(y0 * w + x1) * c + k]!;
        const d = src[(y1 * w + x0) * c + k]!, e = src[(y1 * w + x1) * c + k]!;
        const top = a + (b - a) * wx, bottom = d + (e - d) * wx;
        out[(y * outW + x) * c + k] = top + (bottom - top) * wy;
      }
    }
  }
  return out;
}
