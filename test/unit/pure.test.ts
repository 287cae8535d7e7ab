// Covers the pure helpers: artifact path safety, configHash/canonicalJson, batching (chunk, metricRoom, truncate), validateKey, loadConfig, backoffDelay/parseRetryAfter.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.js';
import {
  MlflowApiError,
  MlflowUnreachableError,
  RunwardenError,
  UnsafeArtifactPathError,
  ValidationError,
} from '../../src/errors/index.js';
import { encodePath, joinArtifactPath, normalizeArtifactPath } from '../../src/mlflow/paths.js';
import { backoffDelay, isTransient, parseRetryAfter, type RetryPolicy } from '../../src/mlflow/retry.js';
import { batchBody, chunk, metricRoom, truncate } from '../../src/tracking/batching.js';
import { canonicalJson, configHash } from '../../src/tracking/lineage.js';
import { validateKey } from '../../src/tracking/validation.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('normalizeArtifactPath', () => {
  it.each([
    ['a/b.txt', 'a/b.txt'],
    ['./a//b', 'a/b'],
    ['a\\b', 'a/b'],
    ['plots/./loss.png', 'plots/loss.png'],
    ['a/b/', 'a/b'],
    ['', ''],
    ['.', ''],
    ['..foo/bar', '..foo/bar'],
  ])('normalizeArtifactPath: %j is accepted as %j', (input, expected) => {
    expect(normalizeArtifactPath(input)).toBe(expected);
  });

  it.each([
    '../x',
    'a/../../x',
    'a/..',
    '..\\x',
    '/etc/passwd',
    '\\\\server\\share\\x',
    'C:\\x',
    'c:/x',
    'a\0b',
    'a%00b',
    '%2e%2e/x',
    'a/%2E%2E/x',
    '..%2fx',
    'http://x/y',
    'file:///etc/passwd',
  ])('normalizeArtifactPath: %j is refused with UnsafeArtifactPathError', (input) => {
    let caught: unknown;
    try {
      normalizeArtifactPath(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UnsafeArtifactPathError);
    expect((caught as UnsafeArtifactPathError).code).toBe('UNSAFE_ARTIFACT_PATH');
    expect((caught as UnsafeArtifactPathError).path).toBe(input);
  });

  it('joinArtifactPath: joins, normalises and still refuses escapes', () => {
    expect(joinArtifactPath('model', undefined, '', 'weights.bin')).toBe('model/weights.bin');
    expect(() => joinArtifactPath('a', '../../b')).toThrow(UnsafeArtifactPathError);
  });

  it('encodePath: percent-encodes each segment but keeps the slashes', () => {
    expect(encodePath('my plots/loss #1.png')).toBe('my%20plots/loss%20%231.png');
  });
});

describe('configHash and canonicalJson', () => {
  it('configHash: the same config with keys in another order has the same hash', () => {
    const a = { lr: 0.1, model: { layers: 4, act: 'relu' }, tags: ['x', 'y'] };
    const b = { tags: ['x', 'y'], model: { act: 'relu', layers: 4 }, lr: 0.1 };
    expect(configHash(a)).toBe(configHash(b));
  });

  it('configHash: is the sha256 hex of the canonical JSON', () => {
    expect(configHash({ b: 2, a: 1 })).toBe(createHash('sha256').update('{"a":1,"b":2}').digest('hex'));
    expect(configHash({ a: 1 })).toMatch(/^[0-9a-f]{64}$/);
  });

  it('configHash: different values, nested values or array orders give different hashes', () => {
    expect(configHash({ lr: 0.1 })).not.toBe(configHash({ lr: 0.2 }));
    expect(configHash({ m: { a: 1 } })).not.toBe(configHash({ m: { a: '1' } }));
    expect(configHash([1, 2])).not.toBe(configHash([2, 1]));
  });

  it('canonicalJson: sorts keys at every depth, including inside arrays, with no whitespace', () => {
    expect(canonicalJson({ b: { d: 1, c: [{ z: 1, y: 2 }] }, a: null })).toBe(
      '{"a":null,"b":{"c":[{"y":2,"z":1}],"d":1}}',
    );
  });

  it('canonicalJson: drops undefined members and turns undefined array items into null, as JSON does', () => {
    expect(canonicalJson({ a: undefined, b: [undefined, 1] })).toBe('{"b":[null,1]}');
    expect(configHash({ a: 1, b: undefined })).toBe(configHash({ a: 1 }));
  });

  it('canonicalJson: refuses non-finite numbers and bigints instead of hashing them as null', () => {
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ x: Number.POSITIVE_INFINITY })).toThrow(/non-finite/);
    expect(() => canonicalJson({ x: 1n })).toThrow(/bigint/);
  });
});

describe('batching helpers', () => {
  it('chunk: splits into pieces of at most the given size, keeping order', () => {
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunk([1, 2, 3, 4], 2)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(chunk([], 3)).toEqual([]);
    expect(
      chunk(
        Array.from({ length: 250 }, (_, i) => i),
        100,
      ).map((c) => c.length),
    ).toEqual([100, 100, 50]);
  });

  it('metricRoom: leaves room for the other entities within the 1000-entity limit', () => {
    expect(metricRoom(0)).toBe(1000);
    expect(metricRoom(2)).toBe(998);
    expect(metricRoom(100)).toBe(900);
    expect(metricRoom(1000)).toBe(0);
    expect(metricRoom(1500)).toBe(0);
  });

  it('truncate: leaves short strings alone and cuts long ones to exactly max characters with a mark', () => {
    expect(truncate('abc', 5)).toBe('abc');
    expect(truncate('abcde', 5)).toBe('abcde');
    const cut = truncate('x'.repeat(7000), 6000);
    expect(cut).toHaveLength(6000);
    expect(cut.endsWith('…[truncated]')).toBe(true);
    expect(cut.startsWith('x'.repeat(5988))).toBe(true);
  });

  it('batchBody: omits empty lists and sends non-finite metric values as strings', () => {
    expect(batchBody('r', [], [], [])).toEqual({ run_id: 'r' });
    expect(
      batchBody(
        'r',
        [{ key: 'm', value: Number.NaN, step: 1, timestamp: 2 }],
        [{ key: 'p', value: 'v' }],
        [],
      ),
    ).toEqual({
      run_id: 'r',
      metrics: [{ key: 'm', value: 'NaN', step: 1, timestamp: 2 }],
      params: [{ key: 'p', value: 'v' }],
    });
  });
});

describe('validateKey', () => {
  it.each([
    'loss',
    'train/loss',
    'a b:c-d.e_f',
    'k'.repeat(250),
    'x..y',
  ])('validateKey: %j is a valid key', (key) => {
    expect(() => validateKey('metrics.k', key)).not.toThrow();
  });

  it.each([
    '',
    'k'.repeat(251),
    'bad*key',
    'ünïcode?',
    '../x',
    'a/../b',
    '/abs',
    'a//b',
    'a/',
    '.',
    './x',
  ])('validateKey: %j is refused with a ValidationError naming the field', (key) => {
    let caught: unknown;
    try {
      validateKey('params.k', key);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    expect((caught as ValidationError).code).toBe('VALIDATION_ERROR');
    expect((caught as ValidationError).field).toBe('params.k');
    expect((caught as Error).message.startsWith('params.k: ')).toBe(true);
  });

  it('validateKey: the message for a long key gives its length and the limit', () => {
    expect(() => validateKey('tags.x', 'k'.repeat(300))).toThrow(/300 characters; MLflow allows at most 250/);
  });
});

describe('loadConfig', () => {
  it('loadConfig: an empty environment gives the documented defaults', () => {
    const c = loadConfig({});
    expect(c.mlflow.trackingUri).toBe('http://127.0.0.1:5000');
    expect(c.mlflow.uiUrl).toBe('http://127.0.0.1:5000');
    expect(c.mlflow.timeoutMs).toBe(30_000);
    expect(c.mlflow.maxRetries).toBe(5);
    expect(c.tracking.leaseMs).toBe(300_000);
    expect(c.tracking.heartbeatMs).toBe(60_000);
    expect(c.tracking.flushIntervalMs).toBe(1_000);
    expect(c.mcp.readOnly).toBe(false);
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(c.logLevel).toBe('info');
    expect(c.tracking.owner).toMatch(/^.+@.+:\d+$/);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('loadConfig: reads the variables it is given, trims trailing slashes and ignores empty strings', () => {
    const c = loadConfig({
      MLFLOW_TRACKING_URI: 'https://mlflow.example.com/',
      MLFLOW_TRACKING_TOKEN: 'tok',
      RUNWARDEN_LEASE_MS: '60000',
      RUNWARDEN_READ_ONLY: 'yes',
      RUNWARDEN_OWNER: '',
    });
    expect(c.mlflow.trackingUri).toBe('https://mlflow.example.com');
    expect(c.mlflow.token).toBe('tok');
    expect(c.tracking.leaseMs).toBe(60_000);
    expect(c.mcp.readOnly).toBe(true);
    expect(c.tracking.owner).not.toBe('');
  });

  it("loadConfig: MLFLOW_TRACKING_URI='not a url' is a CONFIG_ERROR naming the variable", () => {
    let caught: unknown;
    try {
      loadConfig({ MLFLOW_TRACKING_URI: 'not a url' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(RunwardenError);
    expect((caught as RunwardenError).code).toBe('CONFIG_ERROR');
    expect((caught as Error).message).toContain('MLFLOW_TRACKING_URI');
    expect((caught as Error).message).toContain('http://127.0.0.1:5000');
  });

  it("loadConfig: RUNWARDEN_LEASE_MS='abc' is a CONFIG_ERROR naming the variable", () => {
    expect(() => loadConfig({ RUNWARDEN_LEASE_MS: 'abc' })).toThrow(
      expect.objectContaining({
        code: 'CONFIG_ERROR',
        message: expect.stringContaining('RUNWARDEN_LEASE_MS'),
      }),
    );
  });

  it.each([
    'localhost:5000',
    'ftp://x',
    'http://',
    'mlflow.internal:5000',
  ])("loadConfig: MLFLOW_TRACKING_URI='%s' (not an http(s) URL) is a CONFIG_ERROR", (uri) => {
    expect(() => loadConfig({ MLFLOW_TRACKING_URI: uri })).toThrow(
      expect.objectContaining({
        code: 'CONFIG_ERROR',
        message: expect.stringContaining('MLFLOW_TRACKING_URI'),
      }),
    );
  });

  it('loadConfig: a heartbeat not shorter than the lease is a CONFIG_ERROR naming both variables', () => {
    expect(() => loadConfig({ RUNWARDEN_LEASE_MS: '60000', RUNWARDEN_HEARTBEAT_MS: '60000' })).toThrow(
      /RUNWARDEN_HEARTBEAT_MS: 60000 must be shorter than RUNWARDEN_LEASE_MS \(60000\)/,
    );
    expect(
      loadConfig({ RUNWARDEN_LEASE_MS: '60000', RUNWARDEN_HEARTBEAT_MS: '10000' }).tracking.heartbeatMs,
    ).toBe(10_000);
  });

  it('loadConfig: boolean settings accept any letter case', () => {
    expect(loadConfig({ RUNWARDEN_READ_ONLY: 'FALSE' }).mcp.readOnly).toBe(false);
    expect(loadConfig({ RUNWARDEN_READ_ONLY: 'True' }).mcp.readOnly).toBe(true);
  });

  it('loadConfig: every bad variable is named in one error', () => {
    expect(() => loadConfig({ RUNWARDEN_LEASE_MS: '-5', RUNWARDEN_LOG_LEVEL: 'loud' })).toThrow(
      /RUNWARDEN_LEASE_MS[\s\S]*RUNWARDEN_LOG_LEVEL|RUNWARDEN_LOG_LEVEL[\s\S]*RUNWARDEN_LEASE_MS/,
    );
  });
});

describe('retry policy', () => {
  const policy: RetryPolicy = { maxRetries: 5, baseDelayMs: 100, maxDelayMs: 1_000 };

  it('backoffDelay: stays within [ceiling/2, ceiling] where the ceiling doubles per attempt up to maxDelay', () => {
    for (const [attempt, ceiling] of [
      [1, 100],
      [2, 200],
      [3, 400],
      [4, 800],
      [5, 1_000],
      [12, 1_000],
    ] as const) {
      for (let i = 0; i < 200; i++) {
        const d = backoffDelay(policy, attempt);
        expect(d).toBeGreaterThanOrEqual(ceiling / 2);
        expect(d).toBeLessThanOrEqual(Math.min(ceiling, policy.maxDelayMs));
      }
    }
  });

  it('backoffDelay: the jitter spans the whole upper half of the ceiling', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    expect(backoffDelay(policy, 3)).toBe(200);
    vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    expect(backoffDelay(policy, 3)).toBeCloseTo(400, 3);
  });

  it('backoffDelay: honours a longer Retry-After, capped at maxDelay', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    expect(backoffDelay(policy, 1, 700)).toBe(700);
    expect(backoffDelay(policy, 1, 0)).toBe(50);
    expect(backoffDelay(policy, 1, 10)).toBe(50);
    expect(backoffDelay(policy, 1, 60_000)).toBe(1_000);
  });

  it('parseRetryAfter: reads seconds and HTTP dates, and ignores garbage', () => {
    expect(parseRetryAfter('0')).toBe(0);
    expect(parseRetryAfter('2')).toBe(2_000);
    expect(parseRetryAfter('1.5')).toBe(1_500);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('')).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    const inFive = new Date(Date.now() + 5_000).toUTCString();
    const ms = parseRetryAfter(inFive)!;
    expect(ms).toBeGreaterThan(3_000);
    expect(ms).toBeLessThanOrEqual(5_000);
    expect(parseRetryAfter(new Date(Date.now() - 60_000).toUTCString())).toBe(0);
  });

  it('isTransient: network failures, 408, 429 and 5xx are transient; other errors are not', () => {
    const api = (status: number) =>
      new MlflowApiError({ status, errorCode: 'X', message: 'm', endpoint: 'GET /x' });
    expect(isTransient(new MlflowUnreachableError('GET /x', 'ECONNREFUSED'))).toBe(true);
    for (const s of [408, 429, 500, 502, 503, 504]) expect(isTransient(api(s))).toBe(true);
    for (const s of [400, 401, 403, 404, 409, 501]) expect(isTransient(api(s))).toBe(false);
    expect(isTransient(new Error('boom'))).toBe(false);
  });
});
