/**
 * CSV tables for evaluation and prediction: a header row, then data rows. Fields may be quoted
 * (RFC 4180: `"a,b"`, `""` for a quote, newlines inside quotes); numbers become numbers, empty
 * fields become null, anything else stays a string. Errors name the row (1-based, header = row 1)
 * and the column, and the number of rows is capped so a huge upload cannot exhaust memory.
 */
import { capForEcho, ValidationError } from '../errors/index.js';

export interface Table {
  columns: string[];
  rows: (number | string | null)[][];
}

/** Default cap on data rows. */
export const CSV_MAX_ROWS_DEFAULT = 1_000_000;

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

function cell(raw: string, quoted: boolean): number | string | null {
  const t = raw.trim();
  if (NUMBER.test(t)) return Number(t);
  if (quoted) return raw;
  if (t === '') return null;
  if (/^[+-]?(nan|inf|infinity)$/i.test(t))
    return /nan/i.test(t) ? Number.NaN : t.startsWith('-') ? -Infinity : Infinity;
  return raw;
}

/** Splits CSV text into records of raw fields (quoted flag kept per field). */
function* records(text: string): Generator<{ fields: { v: string; q: boolean }[]; line: number }> {
  let i = 0;
  let line = 1;
  const n = text.length;
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  while (i < n) {
    const start = line;
    const fields: { v: string; q: boolean }[] = [];
    for (;;) {
      let v = '';
      let q = false;
      if (text[i] === '"') {
        q = true;
        i++;
        for (;;) {
          if (i >= n)
            throw new ValidationError(
              'csv',
              `row ${start}: a quoted field is never closed; close it with '"'.`,
            );
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') {
              v += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === '\n') line++;
          v += c;
          i++;
        }
        while (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
          if (text[i] !== ' ' && text[i] !== '\t')
            throw new ValidationError(
              'csv',
              `row ${start}: text after a closing quote; quote the whole field.`,
            );
          i++;
        }
      } else {
        const s = i;
        while (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') i++;
        v = text.slice(s, i);
      }
      fields.push({ v, q });
      if (i < n && text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '\r') i++;
      if (text[i] === '\n') {
        i++;
        line++;
      }
      break;
    }
    if (fields.length === 1 && !fields[0]!.q && fields[0]!.v.trim() === '') continue; // blank line
    yield { fields, line: start };
  }
}

/** Parses CSV text with a header row. Throws ValidationError naming the row and column. */
export function parseCsv(text: string, opts: { maxRows?: number } = {}): Table {
  const maxRows = opts.maxRows ?? CSV_MAX_ROWS_DEFAULT;
  let columns: string[] | undefined;
  const rows: (number | string | null)[][] = [];
  for (const rec of records(text)) {
    if (columns === undefined) {
      columns = rec.fields.map((f) => f.v.trim());
      const seen = new Set<string>();
      columns.forEach((c, j) => {
        if (c === '')
          throw new ValidationError('csv', `header (row 1), column ${j + 1} is empty; name every column.`);
        if (seen.has(c))
          throw new ValidationError(
            'csv',
            `header (row 1): column '${capForEcho(c, 80)}' appears twice; names must be unique.`,
          );
        seen.add(c);
      });
      continue;
    }
    if (rec.fields.length !== columns.length) {
      throw new ValidationError(
        'csv',
        `row ${rec.line}: ${rec.fields.length} fields, the header has ${columns.length}; every row needs one field per column.`,
      );
    }
    if (rows.length >= maxRows) {
      throw new ValidationError('csv', `more than ${maxRows} data rows; split the table or raise the limit.`);
    }
    rows.push(rec.fields.map((f) => cell(f.v, f.q)));
  }
  if (columns === undefined) throw new ValidationError('csv', 'the table is empty; it needs a header row.');
  return { columns, rows };
}

/** Index of a column, or a ValidationError naming it and the columns there are. */
export function columnIndex(table: Table, name: string, field = 'csv'): number {
  const j = table.columns.indexOf(name);
  if (j < 0) {
    throw new ValidationError(
      field,
      `no column '${capForEcho(name, 80)}'; the table has ${capForEcho(table.columns.join(', '), 300)}.`,
    );
  }
  return j;
}
