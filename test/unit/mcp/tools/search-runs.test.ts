// search_runs: filter errors, missing or unknown experiments.
import { HttpResponse, http } from 'msw';
import { describe, expect, it } from 'vitest';
import { API } from '../harness.js';
import { failed, fake, s, server, useToolSessions } from '../tool-session.js';

useToolSessions();

describe('tools: failures carry a recovery step', () => {
  it('search_runs: a filter MLflow rejects (400 INVALID_PARAMETER_VALUE) returns text explaining the filter syntax', async () => {
    fake.addExperiment('e');
    server.use(
      http.post(`${API}/runs/search`, () =>
        HttpResponse.json(
          { error_code: 'INVALID_PARAMETER_VALUE', message: "Invalid clause(s) in 'metrics.rmse << 1'" },
          { status: 400 },
        ),
      ),
    );
    const text = failed(await s.call('search_runs', { experiment_ids: ['1'], filter: 'metrics.rmse << 1' }));
    expect(text).toContain("Invalid clause(s) in 'metrics.rmse << 1' (MLflow INVALID_PARAMETER_VALUE");
    expect(text).toContain('Check the filter: clauses joined by AND, strings in single quotes');
  });

  it('search_runs: neither experiment_ids nor experiment_names is refused, naming both', async () => {
    const text = failed(await s.call('search_runs', {}));
    expect(text).toContain('experiment_ids: give experiment_ids or experiment_names');
  });

  it('search_runs: an unknown experiment name is refused with its name', async () => {
    const text = failed(await s.call('search_runs', { experiment_names: ['ghost'] }));
    expect(text).toContain("experiment_names: no experiment named 'ghost'");
  });
});
