// get_or_create_experiment: found again, and a deleted experiment holding the name.
import { describe, expect, it } from 'vitest';
import { failed, fake, ok, s, useToolSessions } from '../tool-session.js';

useToolSessions();

describe('tools: failures carry a recovery step', () => {
  it('get_or_create_experiment: a second call finds the same experiment with created false', async () => {
    const first = ok(await s.call('get_or_create_experiment', { name: 'e' }), 'get_or_create_experiment');
    const second = ok(await s.call('get_or_create_experiment', { name: 'e' }), 'get_or_create_experiment');
    expect(first).toMatchObject({ experiment_id: '1', created: true });
    expect(second).toMatchObject({ experiment_id: '1', created: false });
    expect(fake.experiments.size).toBe(1);
  });

  it('get_or_create_experiment: a deleted experiment holding the name is refused with the way out', async () => {
    fake.addExperiment('old').lifecycle_stage = 'deleted';
    const text = failed(await s.call('get_or_create_experiment', { name: 'old' }));
    expect(text).toContain("experiment 'old' (id 1) is deleted and still holds its name");
    expect(text).toContain('mlflow experiments restore --experiment-id 1');
  });
});
