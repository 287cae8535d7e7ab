/**
 * The library names fields the TypeScript way (`artifactPath`); an agent called the tool with
 * the MCP names (`artifact_path`). `inToolTerms` rewrites a ValidationError so its field is the
 * argument the agent actually sent.
 */
import { ValidationError } from '../../errors/index.js';

export function inToolTerms(err: unknown, names: Record<string, string>): unknown {
  if (!(err instanceof ValidationError)) return err;
  const tool = names[err.field];
  if (!tool) return err;
  return new ValidationError(tool, err.message.slice(err.field.length + 2));
}
