// Covers the input boundary's local parts, which need no services: materializeInputs for file and
// inline inputs (each in its own folder), the roots check (realpath, symlinks, `..`, folders), the
// http host allow-list, the manifest's digests, the task environment, and the rule that MLflow
// credentials go only to the tracking server's origin (artifact URIs naming another host refused).
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ValidationError } from '../../src/errors/index.js';
import { artifactBaseUrl } from '../../src/mlflow/artifacts.js';
import { createMlflowClient } from '../../src/mlflow/client.js';
import { credentialsFor } from '../../src/mlflow/transport.js';
import { TemplateEnvEntry } from '../../src/model/template-env.js';
import { inputManifest } from '../../src/runners/input-manifest.js';
import { checkHttpInput, type InputPolicy, resolveLocalInput } from '../../src/runners/input-policy.js';
import { checkInputs, materializeInputs } from '../../src/runners/inputs.js';
import { taskEnvironment } from '../../src/runners/task-env.js';

const root = mkdtempSync(join(tmpdir(), 'rw-inputs-'));
const allowed = join(root, 'allowed');
const outside = join(root, 'outside');
mkdirSync(allowed);
mkdirSync(outside);
writeFileSync(join(outside, 'secret.txt'), 'secret\n');
writeFileSync(join(allowed, 'ok.csv'), 'a\n1\n');
afterAll(() => rmSync(root, { recursive: true, force: true }));
// Never called for file:// and inline inputs.
const client = createMlflowClient({ trackingUri: 'http://127.0.0.1:9' });
const policy: InputPolicy = { roots: [allowed], allowDirs: false, httpHosts: [] };
const url = (p: string) => pathToFileURL(p).href;

async function refusal(p: Promise<unknown>): Promise<ValidationError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ValidationError);
  return err as ValidationError;
}

describe('materializeInputs', () => {
  it('materializeInputs: two file inputs named data.csv and an inline table each get their own folder, none overwritten', async () => {
    for (const d of ['a', 'b']) {
      mkdirSync(join(allowed, d));
      writeFileSync(join(allowed, d, 'data.csv'), `from ${d}\n`);
    }
    const dir = join(root, 'ws', 'inputs');
    const out = await materializeInputs(
      client,
      {
        train: url(join(allowed, 'a', 'data.csv')),
        test: url(join(allowed, 'b', 'data.csv')),
        data: { columns: ['x'], data: [[1], [2]] },
      },
      dir,
      policy,
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

describe('local input roots', () => {
  it('resolveLocalInput: a file outside the roots is refused naming the input, the roots and RUNWARDEN_INPUT_ROOTS', async () => {
    const err = await refusal(resolveLocalInput('inputs.table', 'file:///etc/passwd', policy));
    expect(err.field).toBe('inputs.table');
    expect(err.message).toContain('/etc/passwd is outside the input roots');
    expect(err.message).toContain(allowed);
    expect(err.message).toContain('RUNWARDEN_INPUT_ROOTS');
  });

  it('resolveLocalInput: a symlink inside a root that leads outside is refused, saying where it resolves', async () => {
    symlinkSync(join(outside, 'secret.txt'), join(allowed, 'link.csv'));
    const err = await refusal(resolveLocalInput('inputs.t', url(join(allowed, 'link.csv')), policy));
    expect(err.message).toMatch(
      /link\.csv \(resolves to .*outside\/secret\.txt\) is outside the input roots/,
    );
  });

  it("resolveLocalInput: a '..' segment is refused even when it would land inside a root", async () => {
    const raw = `file://${allowed}/a/%2e%2e/ok.csv`;
    const err = await refusal(resolveLocalInput('inputs.t', raw, policy));
    expect(err.message).toContain("has a '..' segment");
  });

  it('resolveLocalInput: a folder is refused unless RUNWARDEN_INPUT_DIRS allows folders', async () => {
    const err = await refusal(resolveLocalInput('inputs.t', url(join(allowed, 'a')), policy));
    expect(err.message).toMatch(/is a folder; folder inputs are off.*RUNWARDEN_INPUT_DIRS=true/);
    await expect(
      resolveLocalInput('inputs.t', url(join(allowed, 'a')), { ...policy, allowDirs: true }),
    ).resolves.toMatchObject({ isDir: true });
  });

  it('materializeInputs: an allowed folder holding a symlink to a file outside the roots is refused', async () => {
    mkdirSync(join(allowed, 'tree'));
    writeFileSync(join(allowed, 'tree', 'fine.csv'), 'x\n');
    symlinkSync(join(outside, 'secret.txt'), join(allowed, 'tree', 'sneaky.csv'));
    const err = await refusal(
      materializeInputs(client, { t: url(join(allowed, 'tree')) }, join(root, 'ws2'), {
        ...policy,
        allowDirs: true,
      }),
    );
    expect(err.message).toMatch(/sneaky\.csv is a symlink leading outside the input roots/);
  });

  it('resolveLocalInput: a long refused path is echoed capped at 200 characters', async () => {
    const long = `file:///${'x'.repeat(5000)}.csv`;
    const err = await refusal(resolveLocalInput('inputs.t', long, policy));
    expect(err.message.length).toBeLessThan(1000);
    expect(err.message).toMatch(/…\(\d+ more\)/);
  });
});

describe('http inputs', () => {
  it('checkHttpInput: http(s) is off by default, naming RUNWARDEN_HTTP_INPUT_HOSTS; a named host (or host:port) passes', () => {
    expect(() => checkHttpInput('inputs.w', 'http://127.0.0.1:8080/a.csv', policy)).toThrow(
      /inputs\.w: http\(s\) inputs are allowed only from hosts named in RUNWARDEN_HTTP_INPUT_HOSTS \(now: none\); 127\.0\.0\.1:8080 is not one/,
    );
    const named = { ...policy, httpHosts: ['127.0.0.1'] };
    expect(checkHttpInput('inputs.w', 'http://127.0.0.1:8080/a.csv', named).host).toBe('127.0.0.1:8080');
    const port = { ...policy, httpHosts: ['data.example.org:8443'] };
    expect(() => checkHttpInput('inputs.w', 'https://data.example.org/a.csv', port)).toThrow(/is not one/);
    expect(checkHttpInput('inputs.w', 'https://DATA.example.org:8443/a.csv', port).hostname).toBe(
      'data.example.org',
    );
  });
});

describe('input manifest', () => {
  it('inputManifest: names each input with its URI (credentials removed), sha256 and size', async () => {
    const file = join(allowed, 'ok.csv');
    const entries = await inputManifest(
      { series: url(file), web: 'http://user:pw@127.0.0.1:1/ok.csv' },
      { series: file, web: file },
    );
    const digest = createHash('sha256').update('a\n1\n').digest('hex');
    expect(entries).toEqual([
      { name: 'series', uri: url(file), kind: 'file', sha256: digest, bytes: 4, files: 1 },
      { name: 'web', uri: 'http://***@127.0.0.1:1/ok.csv', kind: 'file', sha256: digest, bytes: 4, files: 1 },
    ]);
  });

  it('inputManifest and input errors: secret query values (token=, X-Amz-Signature=) are redacted, never written or echoed', async () => {
    const file = join(allowed, 'ok.csv');
    const signed = 'http://127.0.0.1:1/ok.csv?X-Amz-Signature=sig-secret-777&X-Amz-Date=20260101';
    const tokened = 'https://127.0.0.1:1/ok.csv?token=tok-secret-888';
    const entries = await inputManifest({ a: signed, b: tokened }, { a: file, b: file });
    expect(entries.map((e) => e.uri)).toEqual([
      'http://127.0.0.1:1/ok.csv?X-Amz-Signature=***&X-Amz-Date=20260101',
      'https://127.0.0.1:1/ok.csv?token=***',
    ]);
    const open = { ...policy, httpHosts: ['127.0.0.1'] };
    // Unreachable (port 1): the "cannot be read" error echoes the URI.
    const unread = await refusal(checkInputs(client, { a: signed }, open));
    expect(unread.message).toMatch(/X-Amz-Signature=\*\*\*.* cannot be read/);
    const notHttp = await refusal(
      checkInputs(client, { b: 'ftp://127.0.0.1/ok.csv?token=tok-secret-888' }, open),
    );
    expect(notHttp.message).toMatch(/token=\*\*\* is not an http\(s\) URL/);
    const fileErr = await refusal(
      checkInputs(client, { c: `${url(join(outside, 'nope.csv'))}?token=tok-secret-888` }, open),
    );
    for (const err of [unread, notHttp, fileErr]) {
      expect(err.message).not.toMatch(/sig-secret-777|tok-secret-888/);
    }
  });
});

describe('task environment', () => {
  it('taskEnvironment: passes only the base, the declared names and runwarden’s values, never the worker’s secrets', () => {
    const env = taskEnvironment({
      parent: {
        PATH: '/usr/bin',
        HOME: '/home/w',
        LC_ALL: 'C.UTF-8',
        RUNWARDEN_HTTP_TOKEN: 'secret-token-1234567',
        REDIS_URL: 'redis://:pw@h:6379',
        AWS_SECRET_ACCESS_KEY: 'k',
        OMP_NUM_THREADS: '4',
      },
      declared: ['OMP_NUM_THREADS', 'FIXED=1', 'UNSET_ONE'],
      set: { MLFLOW_TRACKING_URI: 'http://m', MLFLOW_RUN_ID: 'r1', MLFLOW_TRACKING_TOKEN: undefined },
    });
    expect(env).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/w',
      LC_ALL: 'C.UTF-8',
      OMP_NUM_THREADS: '4',
      FIXED: '1',
      MLFLOW_TRACKING_URI: 'http://m',
      MLFLOW_RUN_ID: 'r1',
    });
  });

  it('TemplateEnvEntry: a template cannot pass or set RUNWARDEN_*, MLFLOW_TRACKING_* or REDIS_URL', () => {
    for (const bad of ['RUNWARDEN_HTTP_TOKEN', 'REDIS_URL', 'MLFLOW_TRACKING_TOKEN=x', '1BAD', 'A-B=1']) {
      expect(TemplateEnvEntry.safeParse(bad).success, bad).toBe(false);
    }
    expect(TemplateEnvEntry.safeParse('CUDA_VISIBLE_DEVICES').success).toBe(true);
  });
});

describe('credentials stay with the tracking server', () => {
  it('credentialsFor: the token goes to the tracking origin only (not another host, port or scheme)', () => {
    const t = 'http://127.0.0.1:5000';
    expect(credentialsFor('http://127.0.0.1:5000/api/2.0/x', t, 'Bearer s')).toBe('Bearer s');
    for (const other of ['http://127.0.0.2:5000/x', 'http://127.0.0.1:5001/x', 'https://127.0.0.1:5000/x']) {
      expect(credentialsFor(other, t, 'Bearer s'), other).toBeUndefined();
    }
  });

  it('artifactBaseUrl: an mlflow-artifacts URI naming another host is refused; the tracking host or none is served', () => {
    const c = createMlflowClient({ trackingUri: 'http://127.0.0.1:5000' });
    expect(() => artifactBaseUrl(c, 'mlflow-artifacts://127.0.0.2:5000/x/a.csv')).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED_ARTIFACT_URI' }),
    );
    expect(() => artifactBaseUrl(c, 'mlflow-artifacts://evil@127.0.0.1:5000/x')).toThrow(
      /not the tracking server/,
    );
    expect(artifactBaseUrl(c, 'mlflow-artifacts://127.0.0.1:5000/x/a.csv')).toBe(
      'http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/x/a.csv',
    );
    expect(artifactBaseUrl(c, 'mlflow-artifacts:/x/a.csv')).toBe(
      'http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/x/a.csv',
    );
  });
});

describe('input settings', () => {
  it('loadConfig: by default local inputs are confined to <tasks>/data, folders and web hosts are off, the zip keeps no inputs', () => {
    const c = loadConfig({ RUNWARDEN_TASKS_DIR: '/srv/tasks' });
    expect(c.inputs).toEqual({
      roots: ['/srv/tasks/data'],
      allowDirs: false,
      httpHosts: [],
      zipInputs: false,
    });
  });

  it('loadConfig: RUNWARDEN_INPUT_ROOTS, RUNWARDEN_INPUT_DIRS, RUNWARDEN_HTTP_INPUT_HOSTS and RUNWARDEN_ZIP_INPUTS are read', () => {
    const c = loadConfig({
      RUNWARDEN_INPUT_ROOTS: '/a:/b/c',
      RUNWARDEN_INPUT_DIRS: 'true',
      RUNWARDEN_HTTP_INPUT_HOSTS: 'Data.Example.org, 127.0.0.1:8080',
      RUNWARDEN_ZIP_INPUTS: '1',
    });
    expect(c.inputs).toEqual({
      roots: ['/a', '/b/c'],
      allowDirs: true,
      httpHosts: ['data.example.org', '127.0.0.1:8080'],
      zipInputs: true,
    });
  });
});
