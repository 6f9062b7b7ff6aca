// bugzot-test: once
/**
 * The query language parser on its own: terms, fields, dates, history, sort, and mistakes reported with
 * their position.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseQuery, QueryError } from '../src/search/index.ts';
import { weightedQuery } from '../src/search/repository.ts';

const now = new Date('2026-03-15T10:00:00Z');

function fails(q: string, pattern: RegExp, position: number) {
  try {
    parseQuery(q, now);
  } catch (err) {
    assert.ok(err instanceof QueryError, `${q}: ${String(err)}`);
    assert.match(err.message, pattern, q);
    assert.equal(err.details?.['position'], position, `${q}: position in ${err.message}`);
    assert.equal(err.status, 400);
    return;
  }
  assert.fail(`${q} should not parse`);
}

describe('search query language', () => {
  test('the example of the issue parses into the terms it says', () => {
    const p = parseQuery(
      'crash status:NEW,ASSIGNED product:Omega version:3.2 reporter:me -status:CLOSED "exact phrase" created>-30d sort:changed',
      now,
    );
    assert.deepEqual(
      p.terms.map((t) => [t.kind, t.negated, t.kind === 'list' ? t.field : t.kind === 'text' ? t.mode : '']),
      [
        ['text', false, 'words'],
        ['list', false, 'status'],
        ['list', false, 'product'],
        ['list', false, 'version'],
        ['list', false, 'reporter'],
        ['list', true, 'status'],
        ['text', false, 'phrase'],
        ['date', false, ''],
      ],
    );
    const status = p.terms[1];
    assert.ok(status?.kind === 'list');
    assert.deepEqual(
      status.values.map((v) => [v.text, v.span.start]),
      [
        ['NEW', 13],
        ['ASSIGNED', 17],
      ],
    );
    const created = p.terms[7];
    assert.ok(created?.kind === 'date');
    assert.equal(created.range.from?.toISOString(), '2026-02-13T10:00:00.000Z');
    assert.equal(created.range.to, undefined);
    assert.deepEqual(p.sort, { column: 'changed', dir: 'desc' });
  });

  test('prefixes, quoted values, negated phrases, aliases and sort directions', () => {
    const p = parseQuery(
      'crash* -"stack overflow" product:"Big Product",Omega sev:critical sort:id:asc',
      now,
    );
    assert.deepEqual(p.terms[0], {
      kind: 'text',
      negated: false,
      mode: 'prefix',
      text: 'crash',
      span: { start: 0, length: 6 },
    });
    assert.equal(p.terms[1]?.kind === 'text' && p.terms[1].negated && p.terms[1].text, 'stack overflow');
    const product = p.terms[2];
    assert.ok(product?.kind === 'list');
    assert.deepEqual(
      product.values.map((v) => v.text),
      ['Big Product', 'Omega'],
    );
    assert.equal(p.terms[3]?.kind === 'list' && p.terms[3].field, 'severity');
    assert.deepEqual(p.sort, { column: 'id', dir: 'asc' });
  });

  test('dates: days, ranges, comparisons, relative', () => {
    const range = (q: string) => {
      const t = parseQuery(q, now).terms[0];
      assert.ok(t?.kind === 'date' || t?.kind === 'history');
      return [t.range.from?.toISOString(), t.range.to?.toISOString()];
    };
    assert.deepEqual(range('created:2026-01-01..2026-01-31'), [
      '2026-01-01T00:00:00.000Z',
      '2026-02-01T00:00:00.000Z',
    ]);
    assert.deepEqual(range('created=2026-01-05'), ['2026-01-05T00:00:00.000Z', '2026-01-06T00:00:00.000Z']);
    assert.deepEqual(range('changed<2026-01-05'), [undefined, '2026-01-05T00:00:00.000Z']);
    assert.deepEqual(range('changed>2026-01-05'), ['2026-01-06T00:00:00.000Z', undefined]);
    assert.deepEqual(range('changed>=2026-01-05'), ['2026-01-05T00:00:00.000Z', undefined]);
    assert.deepEqual(range('created>-2w'), ['2026-03-01T10:00:00.000Z', undefined]);
    assert.deepEqual(range('changed:today'), ['2026-03-15T00:00:00.000Z', '2026-03-16T00:00:00.000Z']);
    assert.deepEqual(range('changed:status=RESOLVED@2026-01-01..'), ['2026-01-01T00:00:00.000Z', undefined]);
  });

  test('history terms name a field, optional values and an optional range', () => {
    const t = parseQuery('-changed:assignee=me,dev@example.com@-7d..now', now).terms[0];
    assert.ok(t?.kind === 'history');
    assert.equal(t.negated, true);
    assert.equal(t.field, 'assignee');
    assert.deepEqual(
      t.values.map((v) => v.text),
      ['me', 'dev@example.com'],
    );
    assert.equal(t.range.from?.toISOString(), '2026-03-08T10:00:00.000Z');
    const plain = parseQuery('changed:status', now).terms[0];
    assert.ok(plain?.kind === 'history' && plain.values.length === 0);
  });

  test('a bug number alone jumps; with other words it is text', () => {
    assert.equal(parseQuery('#42').bugNumber, 42);
    assert.equal(parseQuery(' 42 ').bugNumber, 42);
    assert.equal(parseQuery('42 crash').bugNumber, undefined);
  });

  test('mistakes say what is wrong and where', () => {
    fails('crash stauts:NEW', /unknown field "stauts"; did you mean status\?.*column 7/, 6);
    fails('crash "open quote', /never closed/, 6);
    fails('status:NEW,,ASSIGNED', /value is missing/, 11);
    fails('status:', /needs a value/, 7);
    fails('created>yesterdayish', /is not a date/, 8);
    fails('created:2026-02-30', /not a day of the calendar/, 8);
    fails('sort:colour', /cannot sort by "colour"/, 5);
    fails('sort:changed:up', /asc or desc/, 13);
    fails('a - b', /lone "-"/, 2);
    fails('product>Omega', /takes a list of values after a colon/, 7);
    fails('changed:colour=red', /not a field with history/, 8);
    fails('foo"bar"', /quotes go around/, 3);
    fails('sort:id sort:changed', /sort is given twice/, 8);
    fails('cras?*', /prefix search/, 0);
  });
});

describe('relevance tiers', () => {
  test('every word of the text query is restricted to the summary (A) or summary and description (AB)', () => {
    assert.equal(weightedQuery("'crash'", 'A'), "'crash':A");
    assert.equal(weightedQuery("'rend':* & 'crash'", 'AB'), "'rend':*AB & 'crash':AB");
    assert.equal(
      weightedQuery("'window' <-> 'resiz' & !'hang':B", 'A'),
      "'window':A <-> 'resiz':A & !'hang':A",
    );
    assert.equal(weightedQuery("'it''s' | 'a\\\\b'", 'AB'), "'it''s':AB | 'a\\\\b':AB");
  });
});
