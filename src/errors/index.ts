/**
 * The few typed errors runwarden throws. Each carries a machine-readable `code`; callers branch on
 * the code (or on `instanceof`), never on message text. Messages name the field and the fix, and
 * every value they echo is capped and stripped of credentials (`./echo.ts`).
 */
import { capForEcho, ERROR_TEXT_MAX, redactUrisIn } from './echo.js';

export {
  capForEcho,
  ECHO_MAX,
  ERROR_TEXT_MAX,
  isWellFormed,
  redactUri,
  redactUrisIn,
  wellFormed,
} from './echo.js';

export type RunwardenErrorCode =
  | 'MLFLOW_API_ERROR'
  | 'MLFLOW_UNREACHABLE'
  | 'MLFLOW_BAD_RESPONSE'
  | 'REDIS_UNREACHABLE'
  | 'VALIDATION_ERROR'
  | 'PARAM_CONFLICT'
  | 'EXPERIMENT_DELETED'
  | 'RUN_CLOSED'
  | 'UNSAFE_ARTIFACT_PATH'
  | 'UNSUPPORTED_ARTIFACT_URI'
  | 'CONFIG_ERROR'
  | 'REVIEW_ALREADY_DECIDED'
  | 'REVIEW_NOT_FOUND'
  | 'PREDICT_REFUSED'
  | 'MODEL_REF_INVALID'
  | 'MODEL_INVALID'
  | 'MODEL_INPUT_MISMATCH';

/** Base class: every error runwarden raises on purpose is one of these. */
export class RunwardenError extends Error {
  readonly code: RunwardenErrorCode;
  constructor(code: RunwardenErrorCode, message: string, options?: { cause?: unknown }) {
    // A safety net: the subclasses cap each value they echo, so this cut is rarely reached.
    super(capForEcho(message, ERROR_TEXT_MAX), options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Longest part of MLflow's own error message kept (characters). */
export const SERVER_MESSAGE_MAX = 500;
const ECHO_ENDPOINT_MAX = 300;

/** An MLflow REST call answered with an error (JSON `{error_code, message}` or any other body). */
export class MlflowApiError extends RunwardenError {
  /** HTTP status; 0 when no response arrived. */
  readonly status: number;
  /** MLflow's `error_code` (e.g. `RESOURCE_DOES_NOT_EXIST`), or `HTTP_<status>` for non-JSON bodies. */
  readonly errorCode: string;
  /** `METHOD /path` of the failed request. */
  readonly endpoint: string;
  /** MLflow's own message (or the start of a non-JSON body). */
  readonly serverMessage: string;
  /** From a `Retry-After` header, when the server sent one. */
  readonly retryAfterMs?: number;
  constructor(init: {
    status: number;
    errorCode: string;
    message: string;
    endpoint: string;
    retryAfterMs?: number;
  }) {
    // MLflow's message can quote the whole request (a 1 MB name comes back in it): capped.
    const serverMessage = capForEcho(redactUrisIn(init.message), SERVER_MESSAGE_MAX);
    const errorCode = capForEcho(init.errorCode, 100);
    const endpoint = capForEcho(init.endpoint, ECHO_ENDPOINT_MAX);
    super('MLFLOW_API_ERROR', `${endpoint} failed (${init.status} ${errorCode}): ${serverMessage}`);
    this.status = init.status;
    this.errorCode = errorCode;
    this.endpoint = endpoint;
    this.serverMessage = serverMessage;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/** The tracking server could not be reached (connection refused, DNS, timeout) after all retries. */
export class MlflowUnreachableError extends RunwardenError {
  readonly endpoint: string;
  constructor(endpoint: string, detail: string, cause?: unknown) {
    const shown = capForEcho(redactUrisIn(endpoint), ECHO_ENDPOINT_MAX);
    super(
      'MLFLOW_UNREACHABLE',
      `${shown}: MLflow tracking server unreachable (${capForEcho(redactUrisIn(detail), SERVER_MESSAGE_MAX)}). Check MLFLOW_TRACKING_URI and that the server is running.`,
      { cause },
    );
    this.endpoint = shown;
  }
}

/**
 * MLflow answered 2xx without a field it always sends (marked `required` in openapi.yaml): not an
 * MLflow server, a proxy that mangled the answer, or an MLflow version that changed its API.
 */
export class MlflowBadResponseError extends RunwardenError {
  /** `METHOD /path` of the request. */
  readonly endpoint: string;
  /** The missing field, e.g. `run.info.run_id` or `runs[3].info.status`. */
  readonly field: string;
  constructor(endpoint: string, field: string) {
    super(
      'MLFLOW_BAD_RESPONSE',
      `${endpoint} answered without ${field}, which MLflow always sends. Check that MLFLOW_TRACKING_URI points at an ` +
        'MLflow tracking server (3.x) and that no proxy in between rewrites its answers.',
    );
    this.endpoint = endpoint;
    this.field = field;
  }
}

/** Input refused before anything was sent: names the field and the fix. */
export class ValidationError extends RunwardenError {
  readonly field: string;
  /** `field` is capped (a tag key can be the bad input); `message` should cap what it quotes. */
  constructor(field: string, message: string) {
    const shown = capForEcho(field);
    super('VALIDATION_ERROR', `${shown}: ${message}`);
    this.field = shown;
  }
}

/** A param was already logged on the run with a different value (params are write-once). */
export class ParamConflictError extends RunwardenError {
  readonly runId: string;
  readonly key: string;
  readonly existingValue: string;
  readonly newValue: string;
  constructor(runId: string, key: string, existingValue: string, newValue: string) {
    super(
      'PARAM_CONFLICT',
      `param '${capForEcho(key)}' on run ${capForEcho(runId)} already has value '${capForEcho(existingValue)}'; ` +
        `refusing new value '${capForEcho(newValue)}'. ` +
        'Params are write-once in MLflow: log the new value under another key, or start a new run.',
    );
    this.runId = runId;
    this.key = key;
    this.existingValue = existingValue;
    this.newValue = newValue;
  }
}

/** The experiment name is held by a deleted experiment, so it can be neither used nor recreated. */
export class ExperimentDeletedError extends RunwardenError {
  readonly experimentId: string;
  readonly experimentName: string;
  constructor(experimentId: string, experimentName: string) {
    super(
      'EXPERIMENT_DELETED',
      `experiment '${capForEcho(experimentName)}' (id ${capForEcho(experimentId)}) is deleted and still holds its name. ` +
        `Restore it (POST /api/2.0/mlflow/experiments/restore {"experiment_id":"${experimentId}"}, ` +
        `or \`mlflow experiments restore --experiment-id ${experimentId}\`), remove it for good with \`mlflow gc\`, ` +
        'or choose another name.',
    );
    this.experimentId = experimentId;
    this.experimentName = experimentName;
  }
}

/** A write was attempted on a run handle that has already been ended, or whose run someone else closed or took over. */
export class RunClosedError extends RunwardenError {
  readonly runId: string;
  /** Who closed the run or holds it now (`runwarden.closed_by`, or the new owner), when known. */
  readonly closedBy?: string;
  /** Why (`runwarden.close_reason`), when known. */
  readonly closeReason?: string;
  constructor(runId: string, status: string, opts: { closedBy?: string; closeReason?: string } = {}) {
    super(
      'RUN_CLOSED',
      `run ${capForEcho(runId)} is already closed (${capForEcho(status)}); nothing more can be logged through this handle. Start a new run.`,
    );
    this.runId = runId;
    this.closedBy = opts.closedBy;
    this.closeReason = opts.closeReason;
  }
}

/** An artifact path that would escape the run's artifact root. */
export class UnsafeArtifactPathError extends RunwardenError {
  readonly path: string;
  constructor(path: string, reason: string) {
    super(
      'UNSAFE_ARTIFACT_PATH',
      `artifact path ${JSON.stringify(capForEcho(path))} refused: ${reason}. Use a relative path inside the run's artifact root, like "plots/loss.png".`,
    );
    this.path = path;
  }
}

/** A review item already carries a different decision: says who decided, what, and when. */
export class ReviewAlreadyDecidedError extends RunwardenError {
  readonly reviewId: string;
  readonly decidedBy: string;
  readonly verdict: string;
  readonly decidedAt: number;
  constructor(reviewId: string, d: { judge: string; verdict: string; at: number }) {
    super(
      'REVIEW_ALREADY_DECIDED',
      `review ${capForEcho(reviewId)} was already decided: ${capForEcho(d.verdict)} by ${capForEcho(d.judge)} at ${new Date(d.at).toISOString()}; each item is decided once, so this decision was refused. Read it with get_review.`,
    );
    this.reviewId = reviewId;
    this.decidedBy = d.judge;
    this.verdict = d.verdict;
    this.decidedAt = d.at;
  }
}

/** A model file onnxruntime (or runwarden) cannot use: names the file and why. */
export class ModelInvalidError extends RunwardenError {
  readonly file: string;
  constructor(file: string, reason: string) {
    super(
      'MODEL_INVALID',
      `model ${capForEcho(file, 300)} is not a usable ONNX model: ${capForEcho(redactUrisIn(reason), SERVER_MESSAGE_MAX)}. Export it again (torch.onnx.export, skl2onnx with zipmap off, onnx.save) and check it with onnx.checker.check_model.`,
    );
    this.file = file;
  }
}

/** Feeds that do not fit the model's inputs: names the input, what it expects and what was given. */
export class ModelInputMismatchError extends RunwardenError {
  readonly input: string;
  readonly expected: string;
  readonly given: string;
  constructor(
    input: string,
    expected: string,
    given: string,
    hint = 'build the input to the model signature',
  ) {
    super(
      'MODEL_INPUT_MISMATCH',
      `input '${capForEcho(input, 200)}': expected ${capForEcho(expected, 300)}, given ${capForEcho(given, 300)}; ${hint}.`,
    );
    this.input = input;
    this.expected = expected;
    this.given = given;
  }
}

/** Narrow an unknown error to a RunwardenError with one of the given codes. */
export function hasCode<C extends RunwardenErrorCode>(
  err: unknown,
  code: C,
): err is RunwardenError & { code: C } {
  return err instanceof RunwardenError && err.code === code;
}

/** True when `err` is an MLflow API error with the given MLflow `error_code`. */
export function isMlflowError(err: unknown, errorCode: string): err is MlflowApiError {
  return err instanceof MlflowApiError && err.errorCode === errorCode;
}
