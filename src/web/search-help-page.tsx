/**
 * /search/help: the query language of the search box, with examples. Public: it says nothing about any
 * bug, and people read it before signing in too.
 */
import type { FastifyInstance } from 'fastify';
import { HISTORY_FIELDS, SORT_COLUMNS } from '../search/index.ts';
import { Layout, pageContext } from './layout.tsx';

const EXAMPLES: [string, string][] = [
  ['crash', 'bugs whose summary, description or comments mention crash (or crashes, crashed…)'],
  ['"null pointer"', 'the exact phrase'],
  ['render*', 'words starting with render'],
  ['crash -window', 'crash, but not window'],
  ['status:NEW,ASSIGNED', 'in either status (values of one field OR)'],
  ['status:open', 'in any open status; status:closed for resolved, verified and closed ones'],
  ['product:Omega version:3.2', 'in product Omega and its release 3.2 (fields AND)'],
  ['version:Omega/3.2 component:Omega/UI', 'one product’s release or component'],
  ['-status:CLOSED', 'any term can be negated with a leading -'],
  ['reporter:me assignee:none', 'filed by you, not assigned to anyone'],
  ['assignee:dev@example.com cc:me commenter:Alice', 'people by e-mail, name, number or me'],
  ['severity:critical,blocker priority:P1', 'severities and priorities'],
  ['resolution:FIXED,WONTFIX', 'resolutions; resolution:none for unresolved bugs'],
  ['confidential:yes', 'confidential bugs (yes or no)'],
  ['has:attachment has:bundle', 'bugs with an attachment, with a diagnostic bundle'],
  ['summary:nsWindow', 'summary contains this text (any characters, no stemming)'],
  ['id:12,15', 'these bug numbers'],
  ['created>-30d', 'filed in the last 30 days (h, d, w, m, y)'],
  ['changed:2026-01-01..2026-01-31', 'last changed in January 2026; either end may be left out'],
  ['created<=2025-12-31 changed>=today', 'comparisons: > >= < <= ='],
  ['changed:status=RESOLVED@-7d..', 'the status was changed to RESOLVED in the last week'],
  ['changed:assignee=me@2026-01-01..2026-02-01', 'assigned to you in January'],
  ['-changed:priority', 'the priority was never changed'],
  ['crash sort:changed', 'most recently changed first; sort:changed:asc for oldest first'],
  ['#1234', 'a bug number alone opens that bug'],
];

/** Registers /search/help. */
export async function searchHelpPage(app: FastifyInstance) {
  app.get('/search/help', { config: { public: true } }, async (request, reply) =>
    reply.type('text/html; charset=utf-8').send(
      <Layout title="Searching bugs" ctx={pageContext(request)}>
        <h1>Searching bugs</h1>
        <p>
          The search box takes one line, close to Bugzilla’s quicksearch. Words search the text of summaries
          (weighted highest), descriptions and comments; <code>field:value</code> terms filter. Results list
          only the bugs you may see, most relevant first when you search for words, newest first otherwise.
        </p>
        <table>
          <caption>Examples</caption>
          <thead>
            <tr>
              <th scope="col">Query</th>
              <th scope="col">Finds</th>
            </tr>
          </thead>
          <tbody>
            {EXAMPLES.map(([q, what]) => (
              <tr>
                <td>
                  <a href={`/bugs?q=${encodeURIComponent(q)}`}>
                    <code safe>{q}</code>
                  </a>
                </td>
                <td safe>{what}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <h2>Rules</h2>
        <ul>
          <li>Terms are separated by spaces. All terms must match (AND).</li>
          <li>
            Values of one field are separated by commas and any of them may match (OR). Put a value with
            spaces in quotes: <code>product:"Big Product"</code>.
          </li>
          <li>
            A leading <code>-</code> negates a word, a phrase or a field term. A text search needs at least
            one word that is not negated.
          </li>
          <li>
            Fields: product (prod), version (ver), component (comp), status, resolution (res), severity (sev),
            priority (pri), reporter (rep), assignee (owner), cc, commenter, confidential, has, summary, id,
            created, changed, sort. Names and values are not case-sensitive.
          </li>
          <li>
            Dates: <code>2026-01-31</code> (that whole day, UTC), <code>2026-01-31T12:00Z</code>,{' '}
            <code>today</code>, <code>yesterday</code>, <code>now</code>, or relative: <code>-12h</code>,{' '}
            <code>-30d</code>, <code>-2w</code>, <code>-6m</code>, <code>-1y</code>.
          </li>
          <li>
            History: <code>changed:FIELD</code>, <code>changed:FIELD=VALUE,…</code>, optionally followed by{' '}
            <code>@FROM..TO</code>. Fields with history: <span safe>{HISTORY_FIELDS.join(', ')}</span>.
          </li>
          <li>
            Sorting: <code>sort:COLUMN</code> or <code>sort:COLUMN:asc</code> / <code>:desc</code>, where
            COLUMN is one of <span safe>{SORT_COLUMNS.join(', ')}</span>. The column headings of the list sort
            too.
          </li>
          <li>
            Text that looks like a field (<code>foo:bar</code>) but is not one is a mistake; put it in quotes
            to search for it: <code>"nsFoo::Bar"</code>.
          </li>
        </ul>
        <p>
          A mistyped query is not run: the message says what is wrong and marks where. The same language works
          in the API: <code>GET /api/v1/search?q=…</code> (see the <a href="/api/docs">API reference</a>), and{' '}
          <code>GET /api/v1/search/csv?q=…</code> exports the result as CSV.
        </p>
      </Layout>,
    ),
  );
}
