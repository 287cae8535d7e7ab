/**
 * Usage errors (exit code 2) and small argument helpers shared by the subcommands.
 */
export class UsageError extends Error {}

/** Parse a duration like `90s`, `15m`, `24h`, `7d` or plain milliseconds. */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: '${text}' is not a duration; use e.g. 90s, 15m, 24h, 7d`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms'] ?? 1;
  return Math.round(n * unit);
}
