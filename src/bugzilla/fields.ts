/**
 * Bugzilla's vocabulary: its parameter conventions (lists, numbers, dates), its date format, its
 * priority names, and include_fields / exclude_fields (with `_default`, `_all`, `_extra` and dotted
 * names such as `components.name`).
 */
import { bz, CODE } from './errors.ts';

/** Parameters of a call: the query string over the JSON body (Bugzilla lets the query string win). */
export type Params = Record<string, unknown>;

/** Bugzilla's date-time form: ISO 8601 in UTC without fractions, `2014-09-23T19:12:17Z`. */
export function bzDate(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Parses a date-time parameter (ISO 8601, or Bugzilla's `20140923T19:12:17`); 56 when it is not one. */
export function parseBzDate(name: string, v: unknown): Date {
  const text = String(v).trim();
  const compact = /^(\d{4})(\d{2})(\d{2})T(\d{2}:\d{2}:\d{2})$/.exec(text);
  const iso = compact ? `${compact[1]}-${compact[2]}-${compact[3]}T${compact[4]}Z` : text;
  const d = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(iso)
    ? new Date(/[Zz]|[+-]\d{2}:?\d{2}$/.test(iso) || iso.length === 10 ? iso : `${iso}Z`)
    : new Date(Number.NaN);
  if (Number.isNaN(d.getTime()))
    throw bz(CODE.illegalDate, `'${text}' is not a legal date-time for ${name}.`);
  return d;
}

/** A list parameter: repeated (`?a=1&a=2`), a JSON array, or comma-separated text. */
export function list(p: Params, ...names: string[]): string[] | undefined {
  let out: string[] | undefined;
  for (const name of names) {
    const v = p[name];
    if (v === undefined || v === null) continue;
    const items = (Array.isArray(v) ? v : [v]).flatMap((x) =>
      typeof x === 'string' ? x.split(',') : [String(x)],
    );
    out = [...(out ?? []), ...items.map((s) => s.trim()).filter((s) => s !== '')];
  }
  return out;
}

/** A list parameter whose items keep their commas (summaries, comments). */
export function textList(p: Params, ...names: string[]): string[] | undefined {
  let out: string[] | undefined;
  for (const name of names) {
    const v = p[name];
    if (v === undefined || v === null) continue;
    out = [...(out ?? []), ...(Array.isArray(v) ? v : [v]).map(String)];
  }
  return out;
}

/** A positive whole number (an id); 52 when it is not one. */
export function toId(name: string, v: unknown): number {
  const s = String(v).trim();
  if (!/^[1-9][0-9]{0,9}$/.test(s) || Number(s) > 2147483647)
    throw bz(CODE.notNumeric, `Invalid ${name} '${s}': it must be a positive whole number.`);
  return Number(s);
}

/** A single text parameter (the last one when repeated); undefined when absent. */
export function one(p: Params, name: string): string | undefined {
  const v = p[name];
  if (v === undefined || v === null) return undefined;
  const last = Array.isArray(v) ? v[v.length - 1] : v;
  if (typeof last === 'object') throw bz(CODE.paramInvalid, `The parameter ${name} must be a single value.`);
  return String(last);
}

/** A boolean parameter: JSON true/false, 1/0, or the text "true"/"false". */
export function flag(p: Params, name: string): boolean | undefined {
  const v = one(p, name);
  if (v === undefined) return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0' || v === '') return false;
  throw bz(CODE.paramInvalid, `The parameter ${name} must be true or false.`);
}

/** Bugzilla 5's default priority names, mapped onto Bugzot's P1..P5. */
const PRIORITY_NAMES: Record<string, string> = {
  highest: 'P1',
  high: 'P2',
  normal: 'P3',
  low: 'P4',
  lowest: 'P5',
};

/** A priority as a client may send it (P1..P5 or Highest..Lowest); undefined for `---` (the default). */
export function toPriority(v: string): string | undefined {
  const s = v.trim();
  if (s === '---' || s === '') return undefined;
  if (/^p[1-5]$/i.test(s)) return s.toUpperCase();
  const named = PRIORITY_NAMES[s.toLowerCase()];
  if (named) return named;
  throw bz(CODE.objectDoesNotExist, `There is no priority named '${s}' (P1 to P5, or Highest to Lowest).`);
}

/** Severities Bugzot knows, which are Bugzilla's defaults. */
export const SEVERITIES = ['blocker', 'critical', 'major', 'normal', 'minor', 'trivial', 'enhancement'];
/** Priorities Bugzot knows. */
export const PRIORITIES = ['P1', 'P2', 'P3', 'P4', 'P5'];

/** A severity as a client may send it (any case). */
export function toSeverity(v: string): string {
  const s = v.trim().toLowerCase();
  if (!SEVERITIES.includes(s))
    throw bz(CODE.objectDoesNotExist, `There is no severity named '${v}' (${SEVERITIES.join(', ')}).`);
  return s;
}

/** A tree of field names: `true` keeps a field whole, a nested tree keeps only some of its sub-fields. */
type FieldTree = Map<string, true | FieldTree>;

function tree(names: string[]): FieldTree {
  const root: FieldTree = new Map();
  for (const name of names) {
    const parts = name.split('.');
    let node = root;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      const existing = node.get(part);
      if (i === parts.length - 1) {
        node.set(part, true);
        break;
      }
      if (existing === true) break;
      const child: FieldTree = existing ?? new Map();
      node.set(part, child);
      node = child;
    }
  }
  return root;
}

/** What a caller asked for with include_fields / exclude_fields. */
export interface FieldSelection {
  include?: string[] | undefined;
  exclude?: string[] | undefined;
  /** Extra fields asked for beside the defaults (Red Hat's `extra_fields`, which python-bugzilla sends). */
  extra?: string[] | undefined;
}

/** Reads include_fields / exclude_fields from the parameters. */
export function selection(p: Params): FieldSelection {
  return {
    include: list(p, 'include_fields'),
    exclude: list(p, 'exclude_fields'),
    extra: list(p, 'extra_fields'),
  };
}

/**
 * Whether a top-level field is wanted, so that costly extra fields (comments, say) are only computed
 * when asked for. Default fields are wanted unless include_fields leaves them out.
 */
export function wants(sel: FieldSelection, name: string, isExtra: boolean): boolean {
  if (sel.exclude?.includes(name)) return false;
  if (
    sel.extra?.includes(name) &&
    (!sel.include || sel.include.length === 0 || sel.include.includes('_default'))
  )
    return true;
  if (!sel.include) return !isExtra;
  if (sel.include.includes('_all')) return true;
  if (sel.include.some((f) => f === name || f.startsWith(`${name}.`))) return true;
  return isExtra ? sel.include.includes('_extra') : sel.include.includes('_default');
}

function pick(value: unknown, keep: true | FieldTree, drop: true | FieldTree | undefined): unknown {
  if (drop === true) return undefined;
  if (keep === true && drop === undefined) return value;
  if (Array.isArray(value)) return value.map((v) => pick(v, keep, drop));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const k1 = keep === true ? true : keep.get(k);
    if (k1 === undefined) continue;
    const d1 = drop?.get(k);
    if (d1 === true) continue;
    out[k] = pick(v, k1, d1);
  }
  return out;
}

/**
 * Applies include_fields / exclude_fields to one object: `_default` is the default fields, `_all` the
 * default and the extra ones, `_extra` the extra ones; dotted names reach into nested objects and
 * arrays of objects; unknown names are ignored (as Bugzilla does). Exclusion wins. Without
 * include_fields the object is kept whole: presenters add extra fields only when `wants` says so.
 */
export function applySelection(
  obj: Record<string, unknown>,
  sel: FieldSelection,
  extras: ReadonlySet<string> = new Set(),
): Record<string, unknown> {
  const names = Object.keys(obj);
  const include = sel.include
    ? sel.include.flatMap((f) =>
        f === '_all'
          ? names
          : f === '_default'
            ? names.filter((n) => !extras.has(n))
            : f === '_extra'
              ? names.filter((n) => extras.has(n))
              : [f],
      )
    : names;
  const keep = tree(include);
  const drop = sel.exclude ? tree(sel.exclude) : undefined;
  return pick(obj, keep, drop) as Record<string, unknown>;
}
