// What runwarden echoes back: capped values, URIs without credentials, and typed errors whose
// messages stay bounded whatever input or MLflow message they quote.
import { describe, expect, it } from 'vitest';
import {
  capForEcho,
  ERROR_TEXT_MAX,
  isWellFormed,
  MlflowApiError,
  MlflowUnreachableError,
  ParamConflictError,
  redactUri,
  redactUrisIn,
  UnsafeArtifactPathError,
  ValidationError,
  wellFormed,
} from '../../src/errors/index.js';
import { createMlflowClient } from '../../src/mlflow/client.js';

const MB = 'x'.repeat(1_000_000);

describe('capForEcho', () => {
  it('capForEcho: a short value comes back unchanged', () => {
    expect(capForEcho('run-1')).toBe('run-1');
  });

  it('capForEcho: a 1 MB value keeps 200 characters and says how many more there were', () => {
    expect(capForEcho(MB)).toBe(`${'x'.repeat(200)}…(999800 more)`);
  });

  it('capForEcho: never cuts a surrogate pair in half, and lone surrogates come back as U+FFFD', () => {
    const cut = capForEcho(`${'a'.repeat(9)}😀tail`, 10);
    expect(cut).toBe(`${'a'.repeat(9)}…(6 more)`);
    expect(isWellFormed(cut)).toBe(true);
    expect(capForEcho('a\ud800b')).toBe('a\ufffdb');
  });

  it('isWellFormed: pairs are fine, a lone high or low surrogate is not', () => {
    expect(isWellFormed('😀')).toBe(true);
    expect(isWellFormed('\ud800')).toBe(false);
    expect(isWellFormed('x\udc00')).toBe(false);
    expect(wellFormed('\udc00😀')).toBe('\ufffd😀');
  });
});

describe('redactUri', () => {
  it.each([
    ['http://user:pass@mlflow.example:5000', 'http://***@mlflow.example:5000'],
    ['https://user@mlflow.example/', 'https://***@mlflow.example/'],
    ['redis://:secret@127.0.0.1:6379/0', 'redis://***@127.0.0.1:6379/0'],
    ['http://mlflow.example?token=abc&x=1', 'http://mlflow.example/?token=***&x=1'],
    [
      'https://h/p?password=p&API_KEY=k&X-Amz-Signature=s',
      'https://h/p?password=***&API_KEY=***&X-Amz-Signature=***',
    ],
  ])('redactUri: %s is shown as %s', (uri, shown) => {
    expect(redactUri(uri)).toBe(shown);
  });

  it('redactUri: a URI without credentials, and a string that is no URI, come back unchanged', () => {
    expect(redactUri('http://127.0.0.1:5000')).toBe('http://127.0.0.1:5000');
    expect(redactUri('not a uri')).toBe('not a uri');
  });

  it('redactUrisIn: every URI inside free text is redacted', () => {
    expect(redactUrisIn("fetch failed: http://u:p@h:1/x and 'redis://:s@r:6379'")).toBe(
      "fetch failed: http://***@h:1/x and 'redis://***@r:6379'",
    );
  });

  it('client links: runUrl and experimentUrl never carry the tracking URI credentials, and never throw on a lone surrogate', () => {
    const client = createMlflowClient({ trackingUri: 'http://user:pass@mlflow.example:5000' });
    expect(client.uiUrl).toBe('http://***@mlflow.example:5000');
    expect(client.runUrl('1', 'abc')).toBe('http://***@mlflow.example:5000/#/experiments/1/runs/abc');
    expect(client.runUrl('1', 'a\ud800')).toBe(
      'http://***@mlflow.example:5000/#/experiments/1/runs/a%EF%BF%BD',
    );
  });
});

describe('typed errors stay bounded', () => {
  it('MlflowApiError: a 1 MB MLflow message is kept to 500 characters, with credentials in URIs redacted', () => {
    const err = new MlflowApiError({
      status: 400,
      errorCode: 'INVALID_PARAMETER_VALUE',
      message: `bad value http://u:p@h/ ${MB}`,
      endpoint: 'POST /api/2.0/mlflow/runs/create',
    });
    expect(err.serverMessage.length).toBeLessThan(520);
    expect(err.serverMessage).toContain('http://***@h/');
    expect(err.message.length).toBeLessThan(700);
  });

  it('MlflowUnreachableError: a detail naming the URL with credentials is redacted', () => {
    const err = new MlflowUnreachableError(
      'GET /api/2.0/mlflow/runs/get',
      'connect to http://u:secret@h:5000 refused',
    );
    expect(err.message).not.toContain('secret');
    expect(err.message).toContain('http://***@h:5000');
  });

  it('ValidationError, ParamConflictError and UnsafeArtifactPathError: 1 MB inputs give messages under 2 KB', () => {
    const errors = [
      new ValidationError(`tags.${MB}`, 'bad key'),
      new ValidationError('x', `value ${MB}`),
      new ParamConflictError('r1', MB, MB, MB),
      new UnsafeArtifactPathError(`../${MB}`, "contains a '..' segment"),
    ];
    for (const e of errors) expect(e.message.length).toBeLessThanOrEqual(ERROR_TEXT_MAX + 20);
    expect(errors[2]!.message).toContain('…(999800 more)');
  });
});
