// Covers materializeInputs (src/runners/inputs.ts) for local inputs, which need no services: each
// input lands in its own folder, so inputs that share a file name never overwrite each other.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createMlflowClient } from '../../src/mlflow/client.js';
import { materializeInputs } from '../../src/runners/inputs.js';

const root = mkdtempSync(join(tmpdir(), 'rw-inputs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
// Never called for file:// and inline inputs.
const client = createMlflowClient({ trackingUri: 'http://127.0.0.1:9' });

describe('materializeInputs', () => {
  it('materializeInputs: two file inputs named data.csv and an inline table each get their own folder, none overwritten', async () => {
    for (const d of ['a', 'b']) {
      mkdirSync(join(root, d));
      writeFileSync(join(root, d, 'data.csv'), `from ${d}\n`);
    }
    const dir = join(root, 'ws', 'inputs');
    const out = await materializeInputs(
      client,
      {
        train: pathToFileURL(join(root, 'a', 'data.csv')).href,
        test: pathToFileURL(join(root, 'b', 'data.csv')).href,
        data: { columns: ['x'], data: [[1], [2]] },
      },
      dir,
    );
    expect(out).toEqual({
      train: join(dir, 'train', 'data.csv'),
      test: join(dir, 'test', 'data.csv'),
      data: join(dir, 'data', 'data.csv'),
    });
    expect(readFileSync(out.train!, 'utf8')).toBe('from a\n');
    expect(readFileSync(out.test!, 'utf8')).toBe('from b\n');
    expect(readFileSync(out.data!, 'utf8')).toBe('x\n1\n2\n');
  });
});
