/**
 * A one-hidden-layer tanh network on flattened standardised windows, whose output is a learnt
 * correction to last week's scaled cases (like the GRU template: it starts near the naive
 * forecast). Trained full-batch with Adam (β1 0.9, β2 0.999, ε 1e-8) on MSE; the initial weights
 * come from a seeded PRNG (PyTorch's nn.Linear ranges, ±1/√fan_in), so a seed gives the same run on
 * every machine. One step per epoch; the weights of the epoch with the lowest validation MSE are
 * kept.
 */
import { mse, mulberry32 } from './linalg.js';
import { hiddenLayer, type MlpHead, predictScaled } from './model.js';

export interface MlpOptions {
  hidden: number;
  epochs: number;
  learningRate: number;
  seed: number;
  /** Flat index of last week's target in a window. */
  skip: number;
}

export interface EpochStep {
  epoch: number;
  trainLoss: number;
  valLoss: number;
}

function initHead(width: number, o: MlpOptions): MlpHead {
  const rnd = mulberry32(o.seed);
  const uniform = (n: number, bound: number) =>
    Float64Array.from({ length: n }, () => (2 * rnd() - 1) * bound);
  const b1 = 1 / Math.sqrt(width);
  const b2 = 1 / Math.sqrt(o.hidden);
  return {
    kind: 'mlp',
    hidden: o.hidden,
    w1: uniform(width * o.hidden, b1),
    b1: uniform(o.hidden, b1),
    w2: uniform(o.hidden, b2),
    b2: uniform(1, b2)[0]!,
    skip: o.skip,
  };
}

const copyHead = (h: MlpHead): MlpHead => ({
  ...h,
  w1: h.w1.slice(),
  b1: h.b1.slice(),
  w2: h.w2.slice(),
});

/** Gradients of the mean squared error over all rows of `x` (full batch). */
function gradients(head: MlpHead, x: Float64Array, y: Float64Array, width: number) {
  const H = head.hidden;
  const count = y.length;
  const g = { w1: new Float64Array(width * H), b1: new Float64Array(H), w2: new Float64Array(H), b2: 0 };
  const pre = new Float64Array(H);
  const act = new Float64Array(H);
  for (let i = 0; i < count; i++) {
    const off = i * width;
    hiddenLayer(head, x, off, width, pre);
    let out = head.b2 + x[off + head.skip]!;
    for (let j = 0; j < H; j++) {
      act[j] = Math.tanh(pre[j]!);
      out += act[j]! * head.w2[j]!;
    }
    const d = (2 * (out - y[i]!)) / count;
    g.b2 += d;
    for (let j = 0; j < H; j++) {
      g.w2[j]! += d * act[j]!;
      const dp = d * head.w2[j]! * (1 - act[j]! * act[j]!);
      pre[j] = dp;
      g.b1[j]! += dp;
    }
    for (let k = 0; k < width; k++) {
      const v = x[off + k]!;
      if (v === 0) continue;
      const row = k * H;
      for (let j = 0; j < H; j++) g.w1[row + j]! += v * pre[j]!;
    }
  }
  return g;
}

/** Adam state and update for one parameter array. */
class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  constructor(
    size: number,
    private readonly lr: number,
  ) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }
  step(p: Float64Array, g: ArrayLike<number>, t: number) {
    const [b1, b2, eps] = [0.9, 0.999, 1e-8];
    const c1 = 1 - b1 ** t;
    const c2 = 1 - b2 ** t;
    for (let i = 0; i < p.length; i++) {
      this.m[i] = b1 * this.m[i]! + (1 - b1) * g[i]!;
      this.v[i] = b2 * this.v[i]! + (1 - b2) * g[i]! * g[i]!;
      p[i]! -= (this.lr * (this.m[i]! / c1)) / (Math.sqrt(this.v[i]! / c2) + eps);
    }
  }
}

export function trainMlp(
  train: { x: Float64Array; y: Float64Array },
  val: { x: Float64Array; y: Float64Array },
  width: number,
  o: MlpOptions,
  onEpoch: (s: EpochStep) => void,
): { head: MlpHead; best: EpochStep; steps: EpochStep[] } {
  const head = initHead(width, o);
  const opt = {
    w1: new Adam(head.w1.length, o.learningRate),
    b1: new Adam(head.b1.length, o.learningRate),
    w2: new Adam(head.w2.length, o.learningRate),
    b2: new Adam(1, o.learningRate),
  };
  const b2 = new Float64Array(1);
  let best: { step: EpochStep; head: MlpHead } | undefined;
  const steps: EpochStep[] = [];
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const g = gradients(head, train.x, train.y, width);
    opt.w1.step(head.w1, g.w1, epoch);
    opt.b1.step(head.b1, g.b1, epoch);
    opt.w2.step(head.w2, g.w2, epoch);
    b2[0] = head.b2;
    opt.b2.step(b2, [g.b2], epoch);
    head.b2 = b2[0]!;
    const s: EpochStep = {
      epoch,
      trainLoss: mse(train.y, predictScaled(head, train.x, width)),
      valLoss: mse(val.y, predictScaled(head, val.x, width)),
    };
    steps.push(s);
    onEpoch(s);
    if (!best || s.valLoss < best.step.valLoss) best = { step: s, head: copyHead(head) };
  }
  if (!best) throw new Error('epochs must be at least 1');
  return { head: best.head, best: best.step, steps };
}
