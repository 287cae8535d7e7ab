// MCP resources: templates and reading runs, experiments and models as JSON.
import { describe, expect, it } from 'vitest';
import { BASE } from './harness.js';
import { type Json, s, seedModel, seedRun, useToolSessions } from './tool-session.js';

useToolSessions();

describe('resources', () => {
  it('resources/templates/list has experiments, runs and models', async () => {
    const { resourceTemplates } = await s.mcp.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual([
      'mlflow://experiments/{experiment_id}',
      'mlflow://models/{name}',
      'mlflow://runs/{run_id}',
    ]);
    for (const t of resourceTemplates) expect(t.mimeType).toBe('application/json');
  });

  it('resources/read of a run returns JSON with run_id, status, params and url', async () => {
    const run = seedRun({ run_name: 'r' });
    run.params.set('lr', '0.1');
    const res = await s.mcp.readResource({ uri: `mlflow://runs/${run.info.run_id}` });
    const first = res.contents[0]!;
    expect(first.mimeType).toBe('application/json');
    expect(first.uri).toBe(`mlflow://runs/${run.info.run_id}`);
    const json = JSON.parse('text' in first ? first.text : '{}') as Json;
    expect(json).toMatchObject({
      run_id: run.info.run_id,
      run_name: 'r',
      status: 'RUNNING',
      params: { lr: '0.1' },
      url: `${BASE}/#/experiments/1/runs/${run.info.run_id}`,
    });
  });

  it('resources/read of an experiment and of a model return their JSON with UI links', async () => {
    const run = seedRun({}, 'weekly');
    seedModel('cases gru', run, 2, { champion: '2' });
    const exp = await s.mcp.readResource({ uri: 'mlflow://experiments/1' });
    const e = exp.contents[0]!;
    expect(JSON.parse('text' in e ? e.text : '{}')).toMatchObject({
      experiment_id: '1',
      name: 'weekly',
      url: `${BASE}/#/experiments/1`,
    });
    const model = await s.mcp.readResource({ uri: 'mlflow://models/cases%20gru' });
    const m = model.contents[0]!;
    expect(JSON.parse('text' in m ? m.text : '{}')).toMatchObject({
      name: 'cases gru',
      aliases: { champion: '2' },
      url: `${BASE}/#/models/cases%20gru`,
    });
  });

  it('resources/read of an unknown run fails with the MLflow error', async () => {
    await expect(s.mcp.readResource({ uri: 'mlflow://runs/ghost' })).rejects.toThrow(
      /RESOURCE_DOES_NOT_EXIST/,
    );
  });
});
