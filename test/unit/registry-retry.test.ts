// Covers registerModel (src/tracking/models.ts) against an msw fake model registry: the idempotent version create, idempotencyKey repeats, alias validation and alias moves.
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MlflowApiError, ValidationError } from '../../src/errors/index.js';
import { createMlflowClient } from '../../src/mlflow/client.js';
import { registerModel } from '../../src/tracking/models.js';

const BASE = 'http://mlflow.test';
const API = `${BASE}/api/2.0/mlflow`;
const RUN_ID = 'run1';
const ARTIFACT_URI = 'mlflow-artifacts:/1/run1/artifacts';

interface KV {
  key: string;
  value: string;
}
interface Version {
  name: string;
  version: string;
  source: string;
  run_id: string;
  status: string;
  tags: KV[];
  description?: string;
}

/** An in-memory model registry plus the one run the model comes from. */
class FakeRegistry {
  models = new Map<string, { name: string; aliases: Map<string, string> }>();
  versions: Version[] = [];
  calls: Record<string, number> = {};
  total = 0;
  /** Replaces model-versions/create when set; `store` adds the version as the real server would. */
  onCreate?: (store: () => Version, n: number) => Response | Promise<Response>;

  count(op: string) {
    this.total++;
    this.calls[op] = (this.calls[op] ?? 0) + 1;
    return this.calls[op];
  }

  handlers() {
    const notFound = (message: string) =>
      HttpResponse.json({ error_code: 'RESOURCE_DOES_NOT_EXIST', message }, { status: 404 });
    return [
      http.get(`${API}/runs/get`, ({ request }) => {
        this.count('runs/get');
        const id = new URL(request.url).searchParams.get('run_id');
        if (id !== RUN_ID) return notFound(`Run '${id}' not found`);
        return HttpResponse.json({
          run: {
            info: {
              run_id: RUN_ID,
              experiment_id: '1',
              status: 'FINISHED',
              start_time: 1,
              artifact_uri: ARTIFACT_URI,
              lifecycle_stage: 'active',
            },
          },
        });
      }),
      http.get(`${API}/artifacts/list`, ({ request }) => {
        this.count('artifacts/list');
        const q = new URL(request.url).searchParams;
        if (q.get('run_id') !== RUN_ID) return notFound('run not found');
        return HttpResponse.json(q.get('path') ? {} : { files: [{ path: 'model', is_dir: true }] });
      }),
      http.delete(`${API}/model-versions/delete`, async ({ request }) => {
        this.count('model-versions/delete');
        const { name, version } = (await request.json()) as { name: string; version: string };
        const i = this.versions.findIndex((x) => x.name === name && x.version === version);
        if (i < 0) return notFound(`Model Version (name=${name}, version=${version}) not found`);
        this.versions.splice(i, 1);
        return HttpResponse.json({});
      }),
      http.get(`${API}/registered-models/get`, ({ request }) => {
        this.count('registered-models/get');
        const name = new URL(request.url).searchParams.get('name') ?? '';
        if (!this.models.has(name)) return notFound(`Registered Model with name=${name} not found`);
        return HttpResponse.json({ registered_model: { name } });
      }),
      http.post(`${API}/registered-models/create`, async ({ request }) => {
        this.count('registered-models/create');
        const { name } = (await request.json()) as { name: string };
        if (this.models.has(name)) {
          return HttpResponse.json(
            {
              error_code: 'RESOURCE_ALREADY_EXISTS',
              message: `Registered Model (name=${name}) already exists.`,
            },
            { status: 400 },
          );
        }
        this.models.set(name, { name, aliases: new Map() });
        return HttpResponse.json({ registered_model: { name } });
      }),
      http.get(`${API}/model-versions/search`, ({ request }) => {
        this.count('model-versions/search');
        const filter = new URL(request.url).searchParams.get('filter') ?? '';
        const name = /name = '([^']*)'/.exec(filter)?.[1];
        const runId = /run_id = '([^']*)'/.exec(filter)?.[1];
        if (name === undefined) throw new Error(`fake registry: unsupported filter ${filter}`);
        const found = this.versions.filter(
          (v) => v.name === name && (runId === undefined || v.run_id === runId),
        );
        return HttpResponse.json(found.length ? { model_versions: found } : {});
      }),
      http.post(`${API}/model-versions/create`, async ({ request }) => {
        const n = this.count('model-versions/create');
        const body = (await request.json()) as Omit<Version, 'version' | 'status'>;
        const store = () => {
          const v: Version = {
            name: body.name,
            source: body.source,
            run_id: body.run_id,
            tags: body.tags ?? [],
            description: body.description,
            version: String(this.versions.filter((x) => x.name === body.name).length + 1),
            status: 'READY',
          };
          this.versions.push(v);
          return v;
        };
        if (this.onCreate) return this.onCreate(store, n);
        return HttpResponse.json({ model_version: store() });
      }),
      http.get(`${API}/model-versions/get`, ({ request }) => {
        this.count('model-versions/get');
        const q = new URL(request.url).searchParams;
        const v = this.versions.find((x) => x.name === q.get('name') && x.version === q.get('version'));
        if (!v)
          return notFound(`Model Version (name=${q.get('name')}, version=${q.get('version')}) not found`);
        return HttpResponse.json({ model_version: v });
      }),
      http.post(`${API}/registered-models/alias`, async ({ request }) => {
        this.count('registered-models/alias');
        const { name, alias, version } = (await request.json()) as {
          name: string;
          alias: string;
          version: string;
        };
        this.models.get(name)!.aliases.set(alias, version);
        return HttpResponse.json({});
      }),
    ];
  }
}

const tag = (v: Version, key: string) => v.tags.find((t) => t.key === key)?.value;

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

let reg: FakeRegistry;
beforeEach(() => {
  reg = new FakeRegistry();
  server.use(...reg.handlers());
});

const client = () =>
  createMlflowClient({
    trackingUri: BASE,
    retry: { baseDelayMs: 1, maxDelayMs: 5, maxRetries: 3 },
    timeoutMs: 2_000,
  });

describe('registerModel: idempotent version create', () => {
  it('registerModel: when model-versions/create answers 503 after storing the version, the retry finds it by the request tag and exactly one version exists', async () => {
    reg.onCreate = (store, n) => {
      if (n === 1) {
        store();
        return HttpResponse.json({ error_code: 'TEMPORARILY_UNAVAILABLE', message: 'busy' }, { status: 503 });
      }
      return HttpResponse.json({ model_version: store() });
    };
    const res = await registerModel(client(), { runId: RUN_ID, artifactPath: 'model', name: 'clf' });

    expect(reg.versions).toHaveLength(1);
    expect(reg.calls['model-versions/create']).toBe(1);
    expect(reg.calls['model-versions/search']).toBe(1);
    expect(res.version).toBe('1');
    expect(res.created).toBe(true);
    expect(res.source).toBe(`${ARTIFACT_URI}/model`);
    expect(reg.versions[0]!.source).toBe(`${ARTIFACT_URI}/model`);
    expect(reg.versions[0]!.run_id).toBe(RUN_ID);
    expect(tag(reg.versions[0]!, 'runwarden.request_id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('registerModel: a 503 on model-versions/create that stored nothing is retried and creates one version', async () => {
    reg.onCreate = (store, n) =>
      n === 1 ? new HttpResponse(null, { status: 503 }) : HttpResponse.json({ model_version: store() });
    const res = await registerModel(client(), { runId: RUN_ID, artifactPath: 'model', name: 'clf' });
    expect(reg.calls['model-versions/create']).toBe(2);
    expect(reg.versions).toHaveLength(1);
    expect(res.version).toBe('1');
    expect(res.created).toBe(true);
  });

  it('registerModel: a retried version create does not pick up a version another call made from the same run', async () => {
    // someone else already registered this run's model (no request tag of ours)
    reg.models.set('clf', { name: 'clf', aliases: new Map() });
    reg.versions.push({
      name: 'clf',
      version: '1',
      source: `${ARTIFACT_URI}/model`,
      run_id: RUN_ID,
      status: 'READY',
      tags: [{ key: 'runwarden.request_id', value: 'someone-else' }],
    });
    reg.onCreate = (store, n) =>
      n === 1 ? new HttpResponse(null, { status: 503 }) : HttpResponse.json({ model_version: store() });
    const res = await registerModel(client(), { runId: RUN_ID, artifactPath: 'model', name: 'clf' });
    expect(res.version).toBe('2');
    expect(reg.versions).toHaveLength(2);
  });

  it('registerModel: a non-transient error on model-versions/create is thrown without a retry', async () => {
    reg.onCreate = () =>
      HttpResponse.json({ error_code: 'INVALID_PARAMETER_VALUE', message: 'bad source' }, { status: 400 });
    const err = await registerModel(client(), { runId: RUN_ID, artifactPath: 'model', name: 'clf' }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).errorCode).toBe('INVALID_PARAMETER_VALUE');
    expect(reg.calls['model-versions/create']).toBe(1);
    expect(reg.versions).toHaveLength(0);
  });

  it('registerModel: creates the registered model when it is missing, and leaves an existing one alone', async () => {
    await registerModel(client(), { runId: RUN_ID, artifactPath: 'model', name: 'clf' });
    expect(reg.calls['registered-models/create']).toBe(1);
    await registerModel(client(), { runId: RUN_ID, artifactPath: 'model', name: 'clf' });
    expect(reg.calls['registered-models/create']).toBe(1);
    expect(reg.versions.map((v) => v.version)).toEqual(['1', '2']);
  });
});

describe('registerModel: idempotencyKey', () => {
  it('registerModel: the same idempotencyKey again returns the same version with created: false', async () => {
    const opts = { runId: RUN_ID, artifactPath: 'model', name: 'clf', idempotencyKey: 'train-42' };
    const first = await registerModel(client(), opts);
    const second = await registerModel(client(), opts);

    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.version).toBe(first.version);
    expect(second.modelVersion.version).toBe('1');
    expect(reg.versions).toHaveLength(1);
    expect(reg.calls['model-versions/create']).toBe(1);
    expect(tag(reg.versions[0]!, 'runwarden.idempotency_key')).toBe('train-42');
  });

  it('registerModel: a different idempotencyKey creates a new version', async () => {
    const base = { runId: RUN_ID, artifactPath: 'model', name: 'clf' };
    const a = await registerModel(client(), { ...base, idempotencyKey: 'k1' });
    const b = await registerModel(client(), { ...base, idempotencyKey: 'k2' });
    expect([a.version, b.version]).toEqual(['1', '2']);
    expect(b.created).toBe(true);
    expect(reg.versions).toHaveLength(2);
  });
});

describe('registerModel: aliases', () => {
  it.each([
    'latest',
    'LATEST',
    'v1',
    'V12',
    'bad alias',
    'a/b',
    '',
  ])('registerModel: the alias %j is refused with ValidationError before any request', async (alias) => {
    const err = await registerModel(client(), {
      runId: RUN_ID,
      artifactPath: 'model',
      name: 'clf',
      alias,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).code).toBe('VALIDATION_ERROR');
    expect((err as ValidationError).field).toBe('alias');
    expect(reg.total).toBe(0);
  });

  it('registerModel: an unsafe artifactPath is refused before any request', async () => {
    await expect(
      registerModel(client(), { runId: RUN_ID, artifactPath: '../other-run/model', name: 'clf' }),
    ).rejects.toMatchObject({ code: 'UNSAFE_ARTIFACT_PATH' });
    await expect(
      registerModel(client(), { runId: RUN_ID, artifactPath: '', name: 'clf' }),
    ).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
      field: 'artifactPath',
    });
    expect(reg.total).toBe(0);
  });

  it('registerModel: an alias is pointed at the new version and recorded as the alias intent', async () => {
    const a = await registerModel(client(), {
      runId: RUN_ID,
      artifactPath: 'model',
      name: 'clf',
      alias: 'champion',
    });
    expect(a.alias).toBe('champion');
    expect(reg.models.get('clf')!.aliases.get('champion')).toBe('1');
    expect(tag(reg.versions[0]!, 'runwarden.alias_intent')).toBe('champion');

    await registerModel(client(), { runId: RUN_ID, artifactPath: 'model', name: 'clf', alias: 'champion' });
    expect(reg.models.get('clf')!.aliases.get('champion')).toBe('2');
  });
});
