// A small parser of the Prometheus text exposition format (0.0.4), strict enough to catch what a
// scraper would reject: every line is blank, a comment (`# HELP`, `# TYPE` or free text) or a
// sample `name{label="value",...} value [timestamp]`; names and label names are valid; label
// values are quoted with only \\, \" and \n escapes; a family's TYPE comes before its samples and
// at most once; histogram buckets carry `le`. Used by the unit and integration tests of /metrics.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  types: Map<string, string>;
  help: Map<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** As Prometheus reads values (Go's ParseFloat): NaN and Inf in any letter case. */
function parseValue(v: string, line: number): number {
  const lower = v.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY;
  if (lower === '-inf') return Number.NEGATIVE_INFINITY;
  if (lower === 'nan') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) throw new Error(`line ${line}: bad value '${v}'`);
  return Number(v);
}

/** The family a sample belongs to (histogram/summary series strip their suffix). */
function familyOf(name: string, types: Map<string, string>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    const base = name.slice(0, -suffix.length);
    if (name.endsWith(suffix) && ['histogram', 'summary'].includes(types.get(base) ?? '')) return base;
  }
  return name;
}

export function parsePrometheusText(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const seenSamples = new Set<string>();
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (raw.trim() === '') return;
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([^ ]+)(?: (.*))?$/.exec(raw);
      if (!m) return; // a free comment
      const [, kind, name = '', rest = ''] = m;
      if (!NAME.test(name) || NAME.exec(name)?.[0] !== name)
        throw new Error(`line ${n}: bad metric name '${name}'`);
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`line ${n}: unknown type '${rest}'`);
        if (types.has(name)) throw new Error(`line ${n}: second TYPE for ${name}`);
        if (seenSamples.has(name)) throw new Error(`line ${n}: TYPE for ${name} after its samples`);
        types.set(name, rest);
      } else help.set(name, rest);
      return;
    }
    const nameMatch = NAME.exec(raw);
    if (!nameMatch) throw new Error(`line ${n}: not a comment or a sample: ${raw.slice(0, 80)}`);
    const name = nameMatch[0];
    let pos = name.length;
    const labels: Record<string, string> = {};
    if (raw[pos] === '{') {
      pos++;
      while (raw[pos] !== '}') {
        const ln = LABEL_NAME.exec(raw.slice(pos));
        if (!ln) throw new Error(`line ${n}: bad label name at column ${pos}`);
        pos += ln[0].length;
        if (raw.slice(pos, pos + 2) !== '="') throw new Error(`line ${n}: expected =" after ${ln[0]}`);
        pos += 2;
        let value = '';
        for (;;) {
          const c = raw[pos];
          if (c === undefined) throw new Error(`line ${n}: unterminated label value`);
          if (c === '"') break;
          if (c === '\\') {
            const e = raw[pos + 1];
            if (e === '\\' || e === '"') value += e;
            else if (e === 'n') value += '\n';
            else throw new Error(`line ${n}: bad escape \\${e}`);
            pos += 2;
          } else {
            value += c;
            pos++;
          }
        }
        pos++;
        if (ln[0] in labels) throw new Error(`line ${n}: label ${ln[0]} twice`);
        labels[ln[0]] = value;
        if (raw[pos] === ',') pos++;
        else if (raw[pos] !== '}') throw new Error(`line ${n}: expected , or } at column ${pos}`);
      }
      pos++;
    }
    if (raw[pos] !== ' ') throw new Error(`line ${n}: expected a space before the value`);
    const parts = raw.slice(pos + 1).split(' ');
    if (parts.length < 1 || parts.length > 2) throw new Error(`line ${n}: expected 'value [timestamp]'`);
    const value = parseValue(parts[0] ?? '', n);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`line ${n}: bad timestamp`);
    const family = familyOf(name, types);
    if (types.get(family) === 'histogram' && name.endsWith('_bucket') && !('le' in labels))
      throw new Error(`line ${n}: histogram bucket without le`);
    seenSamples.add(family);
    samples.push({ name, labels, value });
  });
  return { samples, types, help };
}

/** The samples named `name` whose labels include `labels`. */
export function find(e: Exposition, name: string, labels: Record<string, string> = {}): Sample[] {
  return e.samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}
