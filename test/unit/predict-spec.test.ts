// Covers the enqueue side of prediction specs against hostile inline data (a 100,000-level list, a
// `__proto__` input name), the prediction's scoring of a model with an unbatched output, and the
// dedup rule: a failed or cancelled prediction is never returned for a new request.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors/index.js';
import { predictWithModel } from '../../src/eval/predict.js';
import { parseRequest } from '../../src/eval/request-shapes.js';
import type { NormalizedTask } from '../../src/model/task-spec.js';
import { dedupPredictTask, normalizePredictSpec } from '../../src/queue/predict-spec.js';
import type { TaskState } from '../../src/queue/records.js';
import { summaryOutputOnnx } from './eval-onnx-models.js';

const PROTO = '__proto__';

const thrown = (f: () => unknown): Error => {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('did not throw');
};

/** A list nested `levels` deep, built without recursion: [[[...[1]...]]]. */
function deepList(levels: number): unknown[] {
  let v: unknown[] = [1];
  for (let i = 1; i < levels; i++) v = [v];
  return v;
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rw-predict-spec-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('prediction data from a hostile caller', () => {
  it('normalizePredictSpec: inputs nested 100,000 levels deep is a VALIDATION_ERROR naming predict.data, not a RangeError', () => {
    const err = thrown(() =>
      normalizePredictSpec({ predict: { model: 'models:/m@champion', data: { inputs: deepList(100_000) } } }),
    );
    expect(hasCode(err, 'VALIDATION_ERROR')).toBe(true);
    expect(err.message).toMatch(/^predict\.data: is nested more than 34 levels deep/);
  });

  it('parseRequest: a 100,000-level list from a data file is a VALIDATION_ERROR naming the field', () => {
    const err = thrown(() => parseRequest('predict.data', { instances: deepList(100_000) }, 1000));
    expect(hasCode(err, 'VALIDATION_ERROR')).toBe(true);
    expect(err.message).toMatch(/^predict\.data: is nested more than/);
    // 32 list levels are fine.
    expect(parseRequest('predict.data', { inputs: deepList(32) }, 1000).kind).toBe('tensors');
  });

  it('parseRequest: an input named __proto__ is an input like any other and leaves the prototype alone', () => {
    const body = JSON.parse('{"inputs": {"__proto__": [[1, 2]], "x": [[3]]}}');
    const got = parseRequest('data', body, 10);
    if (got.kind !== 'tensors') throw new Error('expected tensors');
    expect(Object.keys(got.tensors).sort()).toEqual(['__proto__', 'x']);
    expect(Object.getPrototypeOf(got.tensors)).toBe(null);
    expect(got.tensors[PROTO]).toEqual({ values: [1, 2], dims: [1, 2] });
    const inst = parseRequest(
      'data',
      JSON.parse('{"instances": [{"__proto__": [1]}, {"__proto__": [2]}]}'),
      10,
    );
    if (inst.kind !== 'tensors') throw new Error('expected tensors');
    expect(Object.keys(inst.tensors)).toEqual(['__proto__']);
    expect(inst.tensors[PROTO]?.dims).toEqual([2, 1]);
  });
});

describe('predictWithModel', () => {
  it('a model with an output that is not batched is MODEL_INVALID naming the output and its shape, not a table of wrong rows', async () => {
    const d = path.join(dir, 'summary');
    await mkdir(d, { recursive: true });
    await writeFile(path.join(d, 'model.onnx'), summaryOutputOnnx());
    const err = await predictWithModel(d, {
      kind: 'tensors',
      tensors: {},
      unnamed: { values: [1, 2, 3, 4, 5, 6], dims: [3, 2] },
    }).then(
      () => new Error('resolved'),
      (e: unknown) => e as Error,
    );
    expect(hasCode(err, 'MODEL_INVALID')).toBe(true);
    expect(err.message).toMatch(/output 'total' has shape \[1, 1\] for 3 input rows/);
  }, 60_000);
});

describe('dedupPredictTask', () => {
  const task = { taskId: 'p-0123456789abcdef' } as NormalizedTask;
  const states = (m: Record<string, TaskState>) => async (id: string) => m[id];

  it('the same request returns a waiting, running or completed task, and a free id is used as is', async () => {
    for (const s of ['waiting', 'active', 'completed'] as TaskState[]) {
      const got = await dedupPredictTask(task, states({ [task.taskId]: s }));
      expect(got).toMatchObject({ existing: true, task: { taskId: task.taskId } });
    }
    expect(await dedupPredictTask(task, states({}))).toMatchObject({
      existing: false,
      task: { taskId: task.taskId },
    });
  });

  it('a failed or cancelled prediction is never the answer: the request gets the next free -rN task', async () => {
    const got = await dedupPredictTask(
      task,
      states({ [task.taskId]: 'failed', [`${task.taskId}-r1`]: 'cancelled' }),
    );
    expect(got).toMatchObject({ existing: false, task: { taskId: `${task.taskId}-r2` } });
    const again = await dedupPredictTask(
      task,
      states({ [task.taskId]: 'failed', [`${task.taskId}-r1`]: 'active' }),
    );
    expect(again).toMatchObject({ existing: true, task: { taskId: `${task.taskId}-r1` } });
  });
});

describe('prediction settings', () => {
  it('attemptSettings: RUNWARDEN_EVAL_MAX_MODEL_BYTES and RUNWARDEN_EVAL_THREADS reach prediction attempts', async () => {
    const { loadConfig } = await import('../../src/config.js');
    const { attemptSettings } = await import('../../src/queue/from-config.js');
    const cfg = loadConfig({
      MLFLOW_TRACKING_URI: 'http://127.0.0.1:5000',
      RUNWARDEN_EVAL_MAX_MODEL_BYTES: '12345',
      RUNWARDEN_EVAL_THREADS: '3',
    });
    expect(attemptSettings(cfg).predict).toMatchObject({ maxModelBytes: 12_345, threads: 3 });
  }, 60_000);
});
