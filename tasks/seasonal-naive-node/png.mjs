/**
 * A tiny self-contained PNG writer and line-chart painter (no npm dependencies): an RGB canvas
 * with lines, dots and a 3x5 pixel font, encoded as 8-bit truecolour PNG with node:zlib's deflate
 * and a table-driven CRC32. Enough to draw a loss curve; not a general graphics library.
 */
import { deflateSync } from 'node:zlib';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const out = Buffer.alloc(body.length + 8);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), body.length + 4);
  return out;
}

// 3x5 glyphs, rows top to bottom; missing characters draw as blanks.
// biome-ignore format: one glyph per 15 bits reads better packed
const FONT = {
  0: '111101101101111', 1: '010110010010111', 2: '111001111100111', 3: '111001111001111', 4: '101101111001001',
  5: '111100111001111', 6: '111100111101111', 7: '111001001010010', 8: '111101111101111', 9: '111101111001111',
  a: '010101111101101', b: '110101110101110', c: '011100100100011', d: '110101101101110', e: '111100110100111',
  f: '111100110100100', g: '011100101101011', h: '101101111101101', i: '111010010010111', j: '001001001101010',
  k: '101101110101101', l: '100100100100111', m: '101111111101101', n: '110101101101101', o: '010101101101010',
  p: '110101110100100', q: '010101101110011', r: '110101110101101', s: '011100010001110', t: '111010010010010',
  u: '101101101101111', v: '101101101101010', w: '101101111111101', x: '101101010101101', y: '101101010010010',
  z: '111001010100111', '.': '000000000000010', '-': '000000111000000', _: '000000000000111', '/': '001001010100100',
  ':': '000010000010000', '(': '010100100100010', ')': '010001001001010', '=': '000111000111000', ',': '000000000010100',
};

export class Canvas {
  constructor(width, height, background = [255, 255, 255]) {
    this.width = width;
    this.height = height;
    this.pixels = Buffer.alloc(width * height * 3);
    this.rect(0, 0, width, height, background);
  }

  set(x, y, [r, g, b]) {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 3;
    this.pixels[i] = r;
    this.pixels[i + 1] = g;
    this.pixels[i + 2] = b;
  }

  rect(x, y, w, h, color) {
    for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) this.set(x + i, y + j, color);
  }

  /** A straight line `width` pixels thick (a square brush stepped along it). */
  line(x0, y0, x1, y1, color, width = 1) {
    const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
    const off = Math.floor((width - 1) / 2);
    for (let s = 0; s <= steps; s++) {
      const x = x0 + ((x1 - x0) * s) / steps;
      const y = y0 + ((y1 - y0) * s) / steps;
      this.rect(Math.round(x) - off, Math.round(y) - off, width, width, color);
    }
  }

  /** Text in the 3x5 font, each font pixel `scale` pixels square; returns the width drawn. */
  text(x, y, str, color, scale = 2) {
    let cx = x;
    for (const ch of String(str).toLowerCase()) {
      const glyph = FONT[ch] ?? '';
      for (let k = 0; k < glyph.length; k++) {
        if (glyph[k] === '1')
          this.rect(cx + (k % 3) * scale, y + Math.floor(k / 3) * scale, scale, scale, color);
      }
      cx += 4 * scale;
    }
    return cx - x;
  }

  toPNG() {
    const stride = this.width * 3;
    const raw = Buffer.alloc((stride + 1) * this.height);
    for (let y = 0; y < this.height; y++)
      this.pixels.copy(raw, y * (stride + 1) + 1, y * stride, (y + 1) * stride);
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(this.width, 0);
    ihdr.writeUInt32BE(this.height, 4);
    ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit depth, truecolour RGB, deflate, no filter set, no interlace
    return Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', deflateSync(raw, { level: 9 })),
      chunk('IEND', Buffer.alloc(0)),
    ]);
  }
}

/** A line chart of named series over steps 1..n: axes, y ticks, x ticks, legend and title. */
export function lineChart({ title, series, xlabel = 'step', width = 700, height = 400 }) {
  const c = new Canvas(width, height);
  const m = { left: 70, right: 20, top: 40, bottom: 50 };
  const values = series.flatMap((s) => s.values).filter(Number.isFinite);
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (!values.length) [lo, hi] = [0, 1];
  if (hi - lo < 1e-12) [lo, hi] = [lo - 0.5, hi + 0.5];
  const pad = (hi - lo) * 0.06;
  [lo, hi] = [lo - pad, hi + pad];
  const n = Math.max(...series.map((s) => s.values.length), 2);
  const px = (i) => m.left + (i * (width - m.left - m.right)) / (n - 1);
  const py = (v) => height - m.bottom - ((v - lo) / (hi - lo)) * (height - m.top - m.bottom);
  const grey = [225, 225, 225];
  const ink = [40, 40, 40];
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    c.line(m.left, py(v), width - m.right, py(v), grey);
    c.text(6, py(v) - 5, v.toFixed(3), ink);
  }
  const every = Math.ceil(n / 20);
  for (let i = 0; i < n; i += every) {
    c.line(px(i), m.top, px(i), height - m.bottom, grey);
    c.text(px(i) - 4, height - m.bottom + 8, String(i + 1), ink);
  }
  c.line(m.left, m.top, m.left, height - m.bottom, ink);
  c.line(m.left, height - m.bottom, width - m.right, height - m.bottom, ink);
  c.text(m.left, 12, title, ink);
  c.text((width - xlabel.length * 8) / 2, height - 20, xlabel, ink);
  const legend = { x: width - m.right - 150, y: m.top + 10 };
  series.forEach((s) => {
    let prev = null;
    for (const [i, v] of s.values.entries()) {
      if (!Number.isFinite(v)) {
        prev = null; // a gap: the line restarts after a missing value
        continue;
      }
      if (prev) c.line(px(prev[0]), py(prev[1]), px(i), py(v), s.color, 2);
      c.rect(px(i) - 3, py(v) - 3, 7, 7, s.color);
      prev = [i, v];
    }
  });
  c.rect(legend.x - 8, legend.y - 6, 150, series.length * 18 + 8, [255, 255, 255]);
  series.forEach((s, j) => {
    const y = legend.y + j * 18;
    c.line(legend.x, y + 4, legend.x + 24, y + 4, s.color, 3);
    c.text(legend.x + 32, y, s.name, ink);
  });
  return c.toPNG();
}
