/**
 * Artifact path safety. Every artifact path runwarden sends is normalised here first, and any path
 * that could leave the run's artifact root is refused before a request is made: `..` segments,
 * absolute paths, Windows drive letters and UNC prefixes, NUL bytes, lone UTF-16 surrogates (which
 * no URL can carry).
 */
import { isWellFormed, UnsafeArtifactPathError, wellFormed } from '../errors/index.js';

/** Longest artifact path accepted (characters; Linux's PATH_MAX). */
export const MAX_ARTIFACT_PATH_LENGTH = 4096;

/**
 * Normalise a run-relative artifact path: backslashes become `/`, `.` and empty segments vanish.
 * Returns `''` for the root. Throws `UnsafeArtifactPathError` for anything that escapes.
 */
export function normalizeArtifactPath(input: string): string {
  if (typeof input !== 'string') throw new UnsafeArtifactPathError(String(input), 'not a string');
  if (input.length > MAX_ARTIFACT_PATH_LENGTH)
    throw new UnsafeArtifactPathError(
      input,
      `is ${input.length} characters; at most ${MAX_ARTIFACT_PATH_LENGTH} are allowed`,
    );
  if (input.includes('\0')) throw new UnsafeArtifactPathError(input, 'contains a NUL byte');
  if (/%00/i.test(input)) throw new UnsafeArtifactPathError(input, 'contains an encoded NUL (%00)');
  if (!isWellFormed(input))
    throw new UnsafeArtifactPathError(input, 'contains a lone UTF-16 surrogate (not well-formed Unicode)');
  const unified = input.replace(/\\/g, '/');
  if (unified.startsWith('/')) throw new UnsafeArtifactPathError(input, 'is absolute');
  if (/^[a-zA-Z]:/.test(unified)) throw new UnsafeArtifactPathError(input, 'starts with a drive letter');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(unified))
    throw new UnsafeArtifactPathError(input, 'is a URI, not a path');
  const segments = unified.split('/').filter((s) => s !== '' && s !== '.');
  for (const seg of segments) {
    if (seg === '..' || /^%2e%2e$/i.test(seg) || /^\.\.%2f/i.test(seg)) {
      throw new UnsafeArtifactPathError(input, "contains a '..' segment");
    }
  }
  return segments.join('/');
}

/** Join run-relative paths, normalising (and checking) the result. */
export function joinArtifactPath(...parts: (string | undefined)[]): string {
  return normalizeArtifactPath(parts.filter((p) => p !== undefined && p !== '').join('/'));
}

/** Percent-encode each segment of a normalised path for use in a URL (never throws a URIError). */
export function encodePath(path: string): string {
  return path
    .split('/')
    .filter((s) => s !== '')
    .map((s) => encodeURIComponent(wellFormed(s)))
    .join('/');
}
