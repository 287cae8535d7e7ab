// The median-stopping rule (src/sweep/medians.ts) table-driven, the close reason's wording, the
// abort reason's code and the close reason an attempt gets from it, and the stopper
// (src/sweep/early-stop.ts) over a fake MLflow client: siblings read once, refreshes bounded, a
// failed read never stops a child.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import type { MlflowClient } from '../../../src/mlflow/client.js';
import type { SweepChild } from '../../../src/model/sweep-spec.js';
import { stopKind, stopReason } from '../../../src/queue/attempt-stop.js';
import { startEarlyStop } from '../../../src/sweep/early-stop.js';
import {
  EARLY_STOP_PREFIX,
  EarlyStopReason,
  isEarlyStop,
  isEarlyStoppedReason,
} from '../../../src/sweep/early-stop-reason.js';
import {
  better,
  decide,
  median,
  type RuleInput,
  siblingHistory,
  stopReasonText,
  valueAtStep,
} from '../../../src/sweep/medians.js';

/** A sibling history from `[step, value]` pairs. */
const sib = (id: string, pts: [number, number][]) =>
  siblingHistory(
    id,
    pts.map(([step, value], i) => ({ step, value, timestamp: i })),
  );

describe('median', () => {
  it.each([
    [[], Number.NaN],
    [[3], 3],
    [[3, 1], 2],
    [[5, 1, 3], 3],
    [[4, 1, 3, 2], 2.5],
  ])('median(%j) is %d', (values, m) => {
    expect(median(values)).toEqual(m);
  });
});

describe('valueAtStep', () => {
  const h = sib('a', [
    [0, 10],
    [2, 8],
    [2, 7.5],
    [5, 4],
  ]);
  it.each([
    [0, 10],
    [1, 10],
    [2, 7.5],
    [4, 7.5],
    [5, 4],
    [6, undefined],
  ])('valueAtStep: at step %d the sibling counts %s (last value at a step ≤ s; none past its end)', (s, v) => {
    expect(valueAtStep(h, s)).toBe(v);
  });
  it('valueAtStep: an empty history counts at no step', () => {
    expect(valueAtStep(sib('e', []), 0)).toBeUndefined();
  });
  it('siblingHistory: points out of order are sorted by step, then time (the last logged point of a step wins)', () => {
    const h2 = siblingHistory('b', [
      { step: 3, value: 1, timestamp: 5 },
      { step: 1, value: 9, timestamp: 9 },
      { step: 1, value: 8, timestamp: 1 },
    ]);
    expect(valueAtStep(h2, 1)).toBe(9);
    expect(valueAtStep(h2, 3)).toBe(1);
  });
});

describe('better', () => {
  it.each([
    [undefined, 3, 'min', 3],
    [2, 3, 'min', 2],
    [2, 1, 'min', 1],
    [2, 3, 'max', 3],
    [2, Number.NaN, 'min', 2],
    [undefined, Number.NaN, 'max', undefined],
  ] as const)('better(%s, %s, %s) is %s', (best, v, dir, out) => {
    expect(better(best, v, dir)).toBe(out);
  });
});

describe('decide', () => {
  const two = [
    sib('a', [
      [0, 1.0],
      [1, 0.8],
      [2, 0.6],
      [3, 0.5],
    ]),
    sib('b', [
      [0, 1.2],
      [1, 1.0],
      [2, 0.8],
      [3, 0.7],
    ]),
  ];
  const base: RuleInput = {
    direction: 'min',
    warmupSteps: 1,
    minSiblings: 2,
    step: 2,
    best: 5,
    siblings: two,
  };
  it.each<[string, Partial<RuleInput>, ReturnType<typeof decide>]>([
    ['before the warm-up ends, never stops', { step: 0 }, { stop: false, why: 'warmup' }],
    [
      'at the warm-up step itself, can stop',
      { step: 1 },
      { stop: true, step: 1, value: 5, median: 0.9, siblings: 2 },
    ],
    ['with no finished siblings, never stops', { siblings: [] }, { stop: false, why: 'too-few-siblings' }],
    [
      'with fewer finished siblings than the minimum, never stops',
      { minSiblings: 3 },
      { stop: false, why: 'too-few-siblings' },
    ],
    [
      'past the end of every sibling history, never stops (they do not count there)',
      { step: 9 },
      { stop: false, why: 'too-few-siblings' },
    ],
    [
      'minimising: a best value worse than the median of the siblings at that step stops the child',
      {},
      { stop: true, step: 2, value: 5, median: 0.7, siblings: 2 },
    ],
    [
      'minimising: a best value equal to the median does not stop it',
      { best: 0.7 },
      { stop: false, why: 'not-worse' },
    ],
    [
      'minimising: a best value better than the median does not stop it',
      { best: 0.65 },
      { stop: false, why: 'not-worse' },
    ],
    [
      'maximising: a best value below the median stops the child',
      { direction: 'max', best: 0.1 },
      { stop: true, step: 2, value: 0.1, median: 0.7, siblings: 2 },
    ],
    [
      'maximising: a best value above the median does not stop it',
      { direction: 'max', best: 5 },
      { stop: false, why: 'not-worse' },
    ],
    [
      'a child that logged only NaN is stopped once the siblings are there',
      { best: undefined },
      { stop: true, step: 2, value: Number.NaN, median: 0.7, siblings: 2 },
    ],
    [
      'a sibling whose value at the step is NaN does not count',
      { siblings: [...two, sib('n', [[2, Number.NaN]])], minSiblings: 3 },
      { stop: false, why: 'too-few-siblings' },
    ],
    [
      'a minimum of 0 still needs one sibling',
      { siblings: [], minSiblings: 0 },
      { stop: false, why: 'too-few-siblings' },
    ],
  ])('decide: %s', (_name, over, out) => {
    expect(decide({ ...base, ...over })).toEqual(out);
  });
});

describe('stop reason', () => {
  it('stopReasonText: says metric, best value, step, median and how many finished siblings', () => {
    expect(
      stopReasonText('val_loss', { stop: true, step: 7, value: 2.123456789, median: 0.5, siblings: 2 }),
    ).toBe('early-stopped: val_loss 2.12346 at step 7 worse than the median 0.5 of 2 finished siblings');
    expect(stopReasonText('acc', { stop: true, step: 1, value: Number.NaN, median: 0.9, siblings: 1 })).toBe(
      'early-stopped: acc NaN at step 1 worse than the median 0.9 of 1 finished sibling',
    );
  });
  it('stopReasonText: a very long metric name is capped', () => {
    const r = stopReasonText('m'.repeat(250), { stop: true, step: 1, value: 1, median: 0, siblings: 1 });
    expect(r.length).toBeLessThan(250);
  });
  it('EarlyStopReason: is recognised by its code, reads as its message, and its text by the prefix', () => {
    const r = new EarlyStopReason(`${EARLY_STOP_PREFIX} x`);
    expect(isEarlyStop(r)).toBe(true);
    expect(isEarlyStop('early-stopped: x')).toBe(false);
    expect(isEarlyStop(undefined)).toBe(false);
    expect(String(r)).toBe('early-stopped: x');
    expect(isEarlyStoppedReason(r.message)).toBe(true);
    expect(isEarlyStoppedReason('cancelled: by request')).toBe(false);
  });
});

describe('an attempt stopped by the rule', () => {
  it("stopReason: an attempt aborted with the rule's reason closes with 'early-stopped: ...', not 'cancelled: ...'", () => {
    const abort = new AbortController();
    abort.abort(
      new EarlyStopReason('early-stopped: loss 5 at step 3 worse than the median 1 of 2 finished siblings'),
    );
    const kind = stopKind(abort.signal, new AbortController().signal);
    expect(kind).toBe('cancelled');
    expect(stopReason(kind!, { signal: abort.signal }, 60)).toBe(
      'early-stopped: loss 5 at step 3 worse than the median 1 of 2 finished siblings',
    );
    const cancel = new AbortController();
    cancel.abort('by request');
    expect(stopReason('cancelled', { signal: cancel.signal }, 60)).toBe('cancelled: by request');
  });
});

/** A fake client: runs/search answers `finished()`, get-history answers each run's points. */
function fakeClient(finished: () => string[], histories: Record<string, [number, number][]>) {
  const calls = { search: 0, history: [] as string[] };
  const api = {
    POST: vi.fn(async (path: string) => {
      expect(path).toBe('/api/2.0/mlflow/runs/search');
      calls.search++;
      return { data: { runs: finished().map((id) => ({ info: { run_id: id } })) } };
    }),
    GET: vi.fn(async (path: string, init: { params: { query: { run_id: string } } }) => {
      expect(path).toBe('/api/2.0/mlflow/metrics/get-history');
      const id = init.params.query.run_id;
      calls.history.push(id);
      if (!histories[id]) throw new Error('MLflow unreachable');
      return {
        data: { metrics: histories[id].map(([step, value]) => ({ key: 'loss', step, value, timestamp: 0 })) },
      };
    }),
  };
  return { client: { api } as unknown as MlflowClient, calls };
}

const sweep: SweepChild = {
  id: 's-abc',
  parentTaskId: 's-abc',
  parentRunId: 'p',
  index: 2,
  earlyStop: { metric: 'loss', warmupSteps: 2, direction: 'min' },
};
const good: [number, number][] = [
  [0, 1],
  [1, 0.8],
  [2, 0.6],
  [3, 0.5],
];

describe('startEarlyStop', () => {
  // Fake timers (and Date): "not called after N ms" advances exactly N ms and runs every timer and
  // promise due by then, so the check is deterministic instead of a real-time sleep.
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  it('startEarlyStop: a sweep without early stopping gets no stopper', () => {
    const { client } = fakeClient(() => [], {});
    const { earlyStop: _, ...plain } = sweep;
    expect(
      startEarlyStop({ client, sweep: plain, log: silentLogger, stop: () => undefined }),
    ).toBeUndefined();
  });

  it('startEarlyStop: after the warm-up, a child worse than its finished siblings is stopped once, with the reason', async () => {
    const { client, calls } = fakeClient(() => ['a', 'b', 'own'], { a: good, b: good, own: [] });
    const stop = vi.fn();
    const s = startEarlyStop({ client, sweep, log: silentLogger, stop, evaluateMs: 0 })!;
    s.runStarted('1', 'own');
    s.observe({ key: 'loss', value: 3, step: 0 });
    s.observe({ key: 'loss', value: 3, step: 1 });
    s.observe({ key: 'other', value: 9, step: 5 });
    await vi.advanceTimersByTimeAsync(20);
    // Nothing is read before the warm-up ends (step 2), and nothing stops.
    expect(calls.search).toBe(0);
    expect(stop).not.toHaveBeenCalled();
    s.observe({ key: 'loss', value: 2.5, step: 2 });
    await vi.waitFor(() => expect(stop).toHaveBeenCalledTimes(1));
    expect(calls.history.sort()).toEqual(['a', 'b']);
    const reason = stop.mock.calls[0]![0] as EarlyStopReason;
    expect(isEarlyStop(reason)).toBe(true);
    expect(reason.message).toBe(
      'early-stopped: loss 2.5 at step 2 worse than the median 0.6 of 2 finished siblings',
    );
    expect(s.fired).toBe(reason);
    s.observe({ key: 'loss', value: 2.4, step: 3 });
    await vi.advanceTimersByTimeAsync(20);
    expect(stop).toHaveBeenCalledTimes(1);
    s.close();
  });

  it('startEarlyStop: a child as good as its siblings is never stopped', async () => {
    const { client, calls } = fakeClient(() => ['a', 'b'], { a: good, b: good });
    const stop = vi.fn();
    const s = startEarlyStop({ client, sweep, log: silentLogger, stop, evaluateMs: 0 })!;
    s.runStarted('1', 'own');
    for (const [step, value] of good) s.observe({ key: 'loss', value, step });
    await vi.waitFor(() => expect(calls.history).toHaveLength(2));
    s.observe({ key: 'loss', value: 0.5, step: 3 });
    await vi.advanceTimersByTimeAsync(30);
    expect(stop).not.toHaveBeenCalled();
    s.close();
  });

  it('startEarlyStop: siblings are searched at most once per refresh interval and each history is read once', async () => {
    let finished = ['a'];
    const { client, calls } = fakeClient(() => finished, { a: good, b: good });
    const stop = vi.fn();
    const s = startEarlyStop({ client, sweep, log: silentLogger, stop, evaluateMs: 0, refreshMs: 150 })!;
    s.runStarted('1', 'own');
    s.observe({ key: 'loss', value: 5, step: 2 });
    await vi.waitFor(() => expect(calls.history).toEqual(['a']));
    for (let i = 0; i < 50; i++) s.observe({ key: 'loss', value: 5, step: i % 4 });
    expect(calls.search).toBe(1);
    // One finished sibling is fewer than the minimum (2): no stop yet.
    await vi.advanceTimersByTimeAsync(20);
    expect(stop).not.toHaveBeenCalled();
    finished = ['b', 'a'];
    await vi.advanceTimersByTimeAsync(160);
    s.observe({ key: 'loss', value: 5, step: 3 });
    await vi.waitFor(() => expect(stop).toHaveBeenCalledTimes(1));
    expect(calls.search).toBe(2);
    expect(calls.history).toEqual(['a', 'b']);
    s.close();
  });

  it('startEarlyStop: a failed sibling read never stops the child, and is tried again at the next refresh', async () => {
    const histories: Record<string, [number, number][]> = { a: good };
    const { client, calls } = fakeClient(() => ['a', 'b'], histories);
    const stop = vi.fn();
    const s = startEarlyStop({ client, sweep, log: silentLogger, stop, evaluateMs: 0, refreshMs: 100 })!;
    s.runStarted('1', 'own');
    s.observe({ key: 'loss', value: 5, step: 3 });
    await vi.waitFor(() => expect(calls.history).toContain('b'));
    await vi.advanceTimersByTimeAsync(20);
    expect(stop).not.toHaveBeenCalled();
    histories.b = good;
    await vi.advanceTimersByTimeAsync(110);
    s.observe({ key: 'loss', value: 5, step: 3 });
    await vi.waitFor(() => expect(stop).toHaveBeenCalledTimes(1));
    s.close();
  });

  it('startEarlyStop: nothing fires after close', async () => {
    const { client, calls } = fakeClient(() => ['a', 'b'], { a: good, b: good });
    const stop = vi.fn();
    const s = startEarlyStop({ client, sweep, log: silentLogger, stop, evaluateMs: 50 })!;
    s.runStarted('1', 'own');
    s.observe({ key: 'loss', value: 5, step: 3 });
    s.close();
    await vi.waitFor(() => expect(calls.history).toHaveLength(2));
    await vi.advanceTimersByTimeAsync(80);
    expect(stop).not.toHaveBeenCalled();
  });

  it('startEarlyStop: a sweep id that cannot go in a filter string turns early stopping off', () => {
    const { client } = fakeClient(() => [], {});
    expect(
      startEarlyStop({
        client,
        sweep: { ...sweep, id: "s-' OR 1=1" },
        log: silentLogger,
        stop: () => undefined,
      }),
    ).toBeUndefined();
  });
});
