// Covers the request shapes of `mlflow models serve` as prediction data (dataframe_split,
// dataframe_records, inputs, instances, a bare nested list), the row cap, errors naming the field,
// and the feed checks (MODEL_INPUT_MISMATCH naming the input, expected vs given shape).
import { describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors/index.js';
import { parseRequest, toFeed } from '../../src/eval/request-shapes.js';

const thrown = (f: () => unknown): Error => {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('did not throw');
};

describe('parseRequest', () => {
  it('parseRequest: dataframe_split and dataframe_records become the same table', () => {
    const split = parseRequest(
      'data',
      {
        dataframe_split: {
          columns: ['a', 'b'],
          data: [
            [1, 'x'],
            [2, null],
          ],
        },
      },
      10,
    );
    const records = parseRequest(
      'data',
      {
        dataframe_records: [
          { a: 1, b: 'x' },
          { a: 2, b: null },
        ],
      },
      10,
    );
    expect(split).toEqual({
      kind: 'table',
      table: {
        columns: ['a', 'b'],
        rows: [
          [1, 'x'],
          [2, null],
        ],
      },
    });
    expect(records).toEqual(split);
  });

  it('parseRequest: inputs and instances as a nested list, a named dict, or instance objects become tensors with their shapes', () => {
    expect(
      parseRequest(
        'data',
        {
          inputs: [
            [1, 2],
            [3, 4],
            [5, 6],
          ],
        },
        10,
      ),
    ).toEqual({
      kind: 'tensors',
      tensors: {},
      unnamed: { values: [1, 2, 3, 4, 5, 6], dims: [3, 2] },
    });
    expect(parseRequest('data', { inputs: { window: [[[1], [2]]] } }, 10)).toEqual({
      kind: 'tensors',
      tensors: { window: { values: [1, 2], dims: [1, 2, 1] } },
    });
    expect(parseRequest('data', { instances: [{ x: [1, 2] }, { x: [3, 4] }] }, 10)).toEqual({
      kind: 'tensors',
      tensors: { x: { values: [1, 2, 3, 4], dims: [2, 2] } },
    });
    expect(parseRequest('data', [[[0.5]]], 10)).toEqual({
      kind: 'tensors',
      tensors: {},
      unnamed: { values: [0.5], dims: [1, 1, 1] },
    });
  });

  it('parseRequest: a ragged tensor, a text value, two request keys, an unknown key and too many rows are refused naming the field', () => {
    expect(thrown(() => parseRequest('data', { inputs: [[1, 2], [3]] }, 10)).message).toMatch(
      /^data\.inputs\[1\]: has 1 elements where the first has 2/,
    );
    expect(thrown(() => parseRequest('data', { inputs: [['a']] }, 10)).message).toMatch(
      /^data\.inputs\[0\]\[0\]: is string/,
    );
    expect(thrown(() => parseRequest('data', { inputs: [1], instances: [1] }, 10)).message).toMatch(
      /exactly one of/,
    );
    expect(thrown(() => parseRequest('data', { rows: [1] }, 10)).message).toMatch(/unknown key 'rows'/);
    expect(
      thrown(() => parseRequest('data', { dataframe_split: { columns: ['a'], data: [[1], [2], [3]] } }, 2))
        .message,
    ).toMatch(/^data\.dataframe_split\.data: 3 rows is more than 2 \(RUNWARDEN_PREDICT_MAX_ROWS\)/);
    expect(
      thrown(() => parseRequest('data', { dataframe_split: { columns: ['a', 'b'], data: [[1]] } }, 10))
        .message,
    ).toMatch(/^data\.dataframe_split\.data\[0\]: must be a list of 2 cells/);
  });
});

describe('toFeed', () => {
  const window = { name: 'window', type: 'float32', dims: ['batch', 8, 3] as (number | string)[] };

  it('toFeed: a tensor that fits becomes a typed feed (float32, int64 as BigInt64Array)', () => {
    const f = toFeed(window, { values: Array(24).fill(1.5), dims: [1, 8, 3] });
    expect(f.data).toBeInstanceOf(Float32Array);
    expect(f.dims).toEqual([1, 8, 3]);
    const ids = toFeed({ name: 'ids', type: 'tensor(int64)', dims: [-1] }, { values: [1, 2], dims: [2] });
    expect(ids.data).toBeInstanceOf(BigInt64Array);
  });

  it('toFeed: a wrong rank or a wrong fixed dimension is MODEL_INPUT_MISMATCH naming the input, expected and given', () => {
    const e = thrown(() => toFeed(window, { values: Array(32).fill(0), dims: [1, 8, 4] }));
    expect(hasCode(e, 'MODEL_INPUT_MISMATCH')).toBe(true);
    expect(e.message).toBe("input 'window': the model expects float32 [-1, 8, 3], given [1, 8, 4]");
    expect(
      hasCode(
        thrown(() => toFeed(window, { values: [1], dims: [1] })),
        'MODEL_INPUT_MISMATCH',
      ),
    ).toBe(true);
    const frac = thrown(() =>
      toFeed({ name: 'ids', type: 'int64', dims: [-1] }, { values: [1.5], dims: [1] }),
    );
    expect(frac.message).toMatch(/input 'ids': the model expects int64, value 0 is 1.5/);
  });
});
