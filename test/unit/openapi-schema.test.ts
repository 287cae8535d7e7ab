// Checks src/mlflow/openapi.yaml and the types generated from it: the committed schema.gen.ts must be
// exactly what `npm run gen` produces now, and every operation must follow the spec's conventions
// (operationId, 200 + default ErrorResponse responses); the fields its 200 answers mark `required`
// are exactly the table `ok()` checks (src/mlflow/required.ts), and an answer missing one is an
// MLFLOW_BAD_RESPONSE naming the endpoint and the field (msw: this is the HTTP layer).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import openapiTS from 'openapi-typescript';
import { describe, expect, it } from 'vitest';
import { MlflowBadResponseError } from '../../src/errors/index.js';
import { createMlflowClient, ok } from '../../src/mlflow/client.js';
import { REQUIRED_FIELDS } from '../../src/mlflow/required.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const specPath = join(root, 'src/mlflow/openapi.yaml');
const genPath = join(root, 'src/mlflow/schema.gen.ts');
const cliPath = join(root, 'node_modules/openapi-typescript/bin/cli.js');

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The arguments of the `gen` script in package.json, with the output path replaced by `outPath`. */
function genArgs(outPath: string): string[] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    scripts?: Record<string, string>;
  };
  const script = pkg.scripts?.gen;
  if (!script) throw new Error('package.json has no "gen" script');
  const [bin, ...args] = script.trim().split(/\s+/);
  if (bin !== 'openapi-typescript') throw new Error(`unexpected gen script: ${script}`);
  const out = args.findIndex((a) => a === '-o' || a === '--output');
  if (out < 0 || out + 1 >= args.length) throw new Error(`gen script has no -o <file>: ${script}`);
  args[out + 1] = outPath;
  return args;
}

/** Parses and bundles openapi.yaml the way openapi-typescript does, and returns the document. */
async function loadSpec(): Promise<{ paths: Json; components: Json }> {
  let paths: Json | undefined;
  let components: Json | undefined;
  await openapiTS(pathToFileURL(specPath), {
    silent: true,
    transform(_schema, { ctx }) {
      paths ??= ctx.resolve<Json>('#/paths');
      components ??= ctx.resolve<Json>('#/components');
      return undefined;
    },
  });
  if (!paths || !components) throw new Error('openapi.yaml has no paths or components');
  return { paths, components };
}

/** Resolves a local `#/...` $ref (repeatedly) against the document. */
function deref(doc: Json, node: unknown): unknown {
  let cur = node;
  const seen = new Set<string>();
  while (isObject(cur) && typeof cur.$ref === 'string') {
    const ref = cur.$ref;
    if (!ref.startsWith('#/') || seen.has(ref)) throw new Error(`cannot resolve $ref ${ref}`);
    seen.add(ref);
    let next: unknown = doc;
    for (const key of ref.slice(2).split('/')) {
      const k = key.replaceAll('~1', '/').replaceAll('~0', '~');
      next = isObject(next) ? next[k] : undefined;
    }
    if (next === undefined) throw new Error(`dangling $ref ${ref}`);
    cur = next;
  }
  return cur;
}

/** Every schema location (following $refs) reachable from `schema` that declares `required`. */
function schemasDeclaringRequired(
  doc: Json,
  schema: unknown,
  where: string,
  seen = new Set<unknown>(),
): string[] {
  if (!isObject(schema) || seen.has(schema)) return [];
  seen.add(schema);
  if (typeof schema.$ref === 'string') {
    return schemasDeclaringRequired(doc, deref(doc, schema), schema.$ref, seen);
  }
  const found: string[] = 'required' in schema ? [where] : [];
  const children: [string, unknown][] = [];
  if (isObject(schema.properties)) {
    for (const [name, sub] of Object.entries(schema.properties)) children.push([`${where}.${name}`, sub]);
  }
  for (const key of ['items', 'additionalProperties', 'not', 'contains'] as const) {
    if (key in schema) children.push([`${where}.${key}`, schema[key]]);
  }
  for (const key of ['oneOf', 'anyOf', 'allOf', 'prefixItems'] as const) {
    const list = schema[key];
    if (!Array.isArray(list)) continue;
    for (const [i, sub] of list.entries()) children.push([`${where}.${key}[${i}]`, sub]);
  }
  for (const [at, sub] of children) found.push(...schemasDeclaringRequired(doc, sub, at, seen));
  return found;
}

/**
 * Field paths a 200 schema marks required (`run.info.run_id`, `runs[].info.status`), following
 * $refs and arrays; nested marks count where their parent is present, as `ok()` checks them.
 */
function requiredPaths(doc: Json, schema: unknown, prefix = '', depth = 0): string[] {
  const s = deref(doc, schema);
  if (!isObject(s) || depth > 10) return [];
  if (s.type === 'array') return requiredPaths(doc, s.items, `${prefix}[]`, depth + 1);
  if (!isObject(s.properties)) return [];
  const required = Array.isArray(s.required) ? s.required : [];
  const out: string[] = [];
  for (const [name, sub] of Object.entries(s.properties)) {
    const path = prefix ? `${prefix}.${name}` : name;
    if (required.includes(name)) out.push(path);
    out.push(...requiredPaths(doc, sub, path, depth + 1));
  }
  return out;
}

describe('openapi.yaml / schema.gen.ts', () => {
  it('schema.gen.ts: matches what npm run gen produces from openapi.yaml, so the committed types are never stale', () => {
    const dir = mkdtempSync(join(tmpdir(), 'runwarden-openapi-'));
    try {
      const outPath = join(dir, 'schema.gen.ts');
      const result = spawnSync(process.execPath, [cliPath, ...genArgs(outPath)], {
        cwd: root,
        encoding: 'utf8',
      });
      expect(result.status, `openapi-typescript failed:\n${result.stderr}`).toBe(0);
      const generated = readFileSync(outPath, 'utf8');
      let committed: string;
      try {
        committed = readFileSync(genPath, 'utf8');
      } catch {
        committed = '';
      }
      const a = committed.split('\n');
      const b = generated.split('\n');
      let line = 0;
      while (line < Math.max(a.length, b.length) && a[line] === b[line]) line++;
      expect(
        committed === generated,
        `src/mlflow/schema.gen.ts is stale (first difference at line ${line + 1}): run npm run gen`,
      ).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('every operation has an operationId, a 200 response and a default ErrorResponse; required marks only in 200 JSON answers', async () => {
    const { paths, components } = await loadSpec();
    const doc: Json = { paths, components };
    const problems: string[] = [];
    const operationIds = new Set<string>();
    let operations = 0;

    for (const [path, item] of Object.entries(paths)) {
      if (!isObject(item)) continue;
      for (const method of HTTP_METHODS) {
        const op = item[method];
        if (!isObject(op)) continue;
        operations++;
        const at = `${method.toUpperCase()} ${path}`;

        const id = op.operationId;
        if (typeof id !== 'string' || !/^[a-z][A-Za-z0-9]*$/.test(id)) {
          problems.push(`${at}: operationId missing or not camelCase`);
        } else if (operationIds.has(id)) {
          problems.push(`${at}: duplicate operationId ${id}`);
        } else {
          operationIds.add(id);
        }
        if (typeof op.summary !== 'string' || op.summary.trim() === '') problems.push(`${at}: no summary`);

        const responses = isObject(op.responses) ? op.responses : {};
        if (!('200' in responses)) problems.push(`${at}: no 200 response`);
        const dflt = deref(doc, responses.default);
        const content = isObject(dflt) && isObject(dflt.content) ? dflt.content : {};
        const json = content['application/json'];
        if (
          !isObject(json) ||
          !isObject(json.schema) ||
          json.schema.$ref !== '#/components/schemas/ErrorResponse'
        ) {
          problems.push(`${at}: default response is not ErrorResponse JSON`);
        }

        for (const [status, ref] of Object.entries(responses)) {
          if (status === '200') continue; // its required marks are checked against required.ts below
          const response = deref(doc, ref);
          if (!isObject(response) || !isObject(response.content)) continue;
          for (const [mediaType, media] of Object.entries(response.content)) {
            if (!isObject(media)) continue;
            for (const where of schemasDeclaringRequired(doc, media.schema, `${status} ${mediaType}`)) {
              problems.push(`${at}: response schema declares required at ${where}`);
            }
          }
        }

        const params = [
          ...(Array.isArray(item.parameters) ? item.parameters : []),
          ...(Array.isArray(op.parameters) ? op.parameters : []),
        ];
        for (const p of params.map((x) => deref(doc, x))) {
          if (!isObject(p) || p.in !== 'query' || !isObject(p.schema) || p.schema.type !== 'array') continue;
          if (p.style !== 'form' || p.explode !== true) {
            problems.push(
              `${at}: array query parameter ${String(p.name)} must use style: form, explode: true`,
            );
          }
        }
      }
    }

    expect(problems).toEqual([]);
    expect(operations).toBeGreaterThan(0);
  });

  it('the fields each 200 answer marks required are exactly the table ok() checks (src/mlflow/required.ts)', async () => {
    const { paths, components } = await loadSpec();
    const doc: Json = { paths, components };
    const fromSpec: Record<string, string[]> = {};
    for (const [path, item] of Object.entries(paths)) {
      if (!isObject(item)) continue;
      for (const method of HTTP_METHODS) {
        const op = item[method];
        if (!isObject(op) || !isObject(op.responses)) continue;
        const ok200 = deref(doc, op.responses['200']);
        const media =
          isObject(ok200) && isObject(ok200.content) ? ok200.content['application/json'] : undefined;
        const found = isObject(media) ? requiredPaths(doc, media.schema) : [];
        if (found.length) fromSpec[`${method.toUpperCase()} ${path}`] = found.sort();
      }
    }
    const table = Object.fromEntries(Object.entries(REQUIRED_FIELDS).map(([k, v]) => [k, [...v].sort()]));
    expect(table).toEqual(fromSpec);
    expect(fromSpec['POST /api/2.0/mlflow/runs/create']).toContain('run.info.run_id');
  });

  it('ok(): a 200 without a field MLflow always sends is MLFLOW_BAD_RESPONSE naming the endpoint and the field', async () => {
    const base = 'http://mlflow.badresponse.test';
    const server = setupServer(
      http.post(`${base}/api/2.0/mlflow/runs/create`, () =>
        HttpResponse.json({
          run: {
            info: { experiment_id: '1', status: 'RUNNING', artifact_uri: 'x', lifecycle_stage: 'active' },
          },
        }),
      ),
      http.post(`${base}/api/2.0/mlflow/runs/search`, () =>
        HttpResponse.json({
          runs: [
            {
              info: {
                run_id: 'a',
                experiment_id: '1',
                status: 'RUNNING',
                artifact_uri: 'x',
                lifecycle_stage: 'active',
              },
            },
            { info: { run_id: 'b', experiment_id: '1', artifact_uri: 'x', lifecycle_stage: 'active' } },
          ],
        }),
      ),
      http.get(`${base}/api/2.0/mlflow/experiments/get`, () => HttpResponse.json({})),
      http.get(`${base}/api/2.0/mlflow/model-versions/search`, () => HttpResponse.json({})),
    );
    server.listen({ onUnhandledRequest: 'error' });
    try {
      const client = createMlflowClient({ trackingUri: base, retry: { maxRetries: 0 } });
      const created = await ok(
        client.api.POST('/api/2.0/mlflow/runs/create', { body: { experiment_id: '1' } }),
      ).catch((e: unknown) => e);
      expect(created).toBeInstanceOf(MlflowBadResponseError);
      expect(created).toMatchObject({
        code: 'MLFLOW_BAD_RESPONSE',
        endpoint: 'POST /api/2.0/mlflow/runs/create',
        field: 'run.info.run_id',
      });
      expect((created as Error).message).toMatch(
        /^POST \/api\/2\.0\/mlflow\/runs\/create answered without run\.info\.run_id/,
      );
      await expect(
        ok(client.api.POST('/api/2.0/mlflow/runs/search', { body: { experiment_ids: ['1'] } })),
      ).rejects.toMatchObject({ code: 'MLFLOW_BAD_RESPONSE', field: 'runs[1].info.status' });
      await expect(
        ok(client.api.GET('/api/2.0/mlflow/experiments/get', { params: { query: { experiment_id: '1' } } })),
      ).rejects.toMatchObject({ code: 'MLFLOW_BAD_RESPONSE', field: 'experiment' });
      // an empty search answer is `{}` and is fine: the list itself is optional
      await expect(
        ok(client.api.GET('/api/2.0/mlflow/model-versions/search', { params: { query: {} } })),
      ).resolves.toEqual({});
    } finally {
      server.close();
    }
  });

  it('declares the component schemas runwarden relies on', async () => {
    const { components } = await loadSpec();
    const schemas = isObject(components.schemas) ? components.schemas : {};
    const expected = [
      'ErrorResponse',
      'Experiment',
      'ExperimentTag',
      'Run',
      'RunInfo',
      'RunData',
      'RunInputs',
      'RunOutputs',
      'RunTag',
      'Param',
      'Metric',
      'Dataset',
      'DatasetInput',
      'InputTag',
      'FileInfo',
      'RegisteredModel',
      'RegisteredModelTag',
      'RegisteredModelAlias',
      'ModelVersion',
      'ModelVersionTag',
      'ViewType',
      'RunStatus',
      'ModelVersionStatus',
    ];
    expect(expected.filter((name) => !(name in schemas))).toEqual([]);
    expect(schemas.ViewType).toMatchObject({ enum: ['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL'] });
    expect(schemas.RunStatus).toMatchObject({
      enum: ['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'],
    });
    expect(schemas.ModelVersionStatus).toMatchObject({
      enum: ['PENDING_REGISTRATION', 'FAILED_REGISTRATION', 'READY'],
    });
  });
});
