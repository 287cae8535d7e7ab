// Covers parsing model references for prediction (no MLflow call): the four accepted forms, and
// MODEL_REF_INVALID naming the accepted forms for everything else (nothing guessed: no bare
// registered name, no 'latest', no stages, no runs:/ without a path).
import { describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors/index.js';
import { parseModelRef } from '../../src/tracking/model-ref.js';

const ID = 'm-0123456789abcdef0123456789abcdef';

describe('parseModelRef', () => {
  it('parseModelRef: accepts models:/name@alias, models:/name/version, models:/<model_id> and runs:/<run_id>/<path>', () => {
    expect(parseModelRef('models:/fore-caster@champion')).toEqual({
      kind: 'alias',
      name: 'fore-caster',
      alias: 'champion',
    });
    expect(parseModelRef('models:/fore caster/12')).toEqual({
      kind: 'version',
      name: 'fore caster',
      version: '12',
    });
    expect(parseModelRef(`models:/${ID}`)).toEqual({ kind: 'model-id', modelId: ID });
    expect(parseModelRef('runs:/abc123/model')).toEqual({ kind: 'run', runId: 'abc123', path: 'model' });
    expect(parseModelRef('runs:/abc123/out/model/')).toEqual({
      kind: 'run',
      runId: 'abc123',
      path: 'out/model',
    });
  });

  it('parseModelRef: a bare registered name, latest, a stage, a short id, a runs:/ without path, .. or another scheme is MODEL_REF_INVALID naming the forms', () => {
    for (const ref of [
      'models:/forecaster',
      'models:/forecaster/latest',
      'models:/forecaster/Production',
      'models:/m-123',
      `models:/${ID.toUpperCase()}`,
      'runs:/abc123',
      'runs:/abc123/../x',
      'models:/a/b/c',
      'models:/x@',
      's3://bucket/model',
      '',
      'models:/x@champion\n',
    ]) {
      let err: unknown;
      try {
        parseModelRef(ref);
      } catch (e) {
        err = e;
      }
      expect(hasCode(err, 'MODEL_REF_INVALID'), JSON.stringify(ref)).toBe(true);
      expect((err as Error).message).toContain('models:/<name>@<alias>');
      expect((err as Error).message).toContain('runs:/<run_id>/<path>');
    }
  });

  it('parseModelRef: a very long reference is refused with its echo capped', () => {
    const ref = `models:/${'x'.repeat(5000)}`;
    expect(() => parseModelRef(ref)).toThrow(/longer than 1000 characters/);
    try {
      parseModelRef(ref);
    } catch (e) {
      expect((e as Error).message.length).toBeLessThan(1000);
    }
  });
});
