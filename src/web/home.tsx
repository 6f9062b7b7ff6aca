/** The home page and the stylesheet. (The dashboard of the web UI replaces the home page's body.) */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { packageVersion } from '../ops/routes.ts';
import { Layout } from './layout.tsx';

const stylesheet = readFileSync(new URL('./assets/app.css', import.meta.url), 'utf8');

/** Registers / and /assets/app.css. */
export async function homePages(app: FastifyInstance) {
  app.get('/assets/app.css', { config: { public: true } }, async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(stylesheet),
  );

  app.get('/', { config: { public: true } }, async (request, reply) => {
    const viewer = request.viewer;
    const ctx = { viewer, csrf: request.credential?.csrfToken ?? '', version: packageVersion };
    const page = (
      <Layout title="Home" ctx={ctx}>
        <h1>Bugzot</h1>
        <p>
          A self-hosted bug tracker: file bugs against a product and the release you run, follow them, and
          integrate through the REST API.
        </p>
        {viewer.kind === 'user' ? (
          <p>
            Signed in as <strong safe>{viewer.name}</strong>.
          </p>
        ) : (
          <p>
            <a href="/signin">Sign in</a> to file and follow bugs.
          </p>
        )}
        <ul>
          <li>
            <a href="/api/docs">API reference</a> (<a href="/api/openapi.json">OpenAPI</a>)
          </li>
          <li>
            <a href="/version">Version</a> · <a href="/healthz">Health</a> · <a href="/readyz">Readiness</a>
          </li>
        </ul>
      </Layout>
    );
    return reply.type('text/html; charset=utf-8').send(page);
  });
}
