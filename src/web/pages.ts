/**
 * The plain HTML error pages, rendered without a viewer (the full pages use layout.tsx).
 */

/** Escapes text for HTML; every piece of user or route text goes through it. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const style = `body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;color:#1b1f24;background:#fff}
a{color:#0b5cad}code{background:#f2f4f7;padding:.1em .3em;border-radius:3px}
table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:left;border-bottom:1px solid #dde}
@media (prefers-color-scheme:dark){body{background:#14171a;color:#e6e8eb}a{color:#7ab8ff}code{background:#23272d}td,th{border-color:#2c3138}}`;

/** Wraps page content in the shared layout. */
export function layout(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)} · Bugzot</title><style>${style}</style></head><body>
<header><a href="/"><strong>Bugzot</strong></a></header><main>${body}</main></body></html>`;
}

/** The HTML 404 page (also for bugs the viewer may not see). */
export const notFoundPage = () =>
  layout(
    'Not found',
    '<h1>Not found</h1><p>There is nothing here, or you may not see it.</p><p><a href="/">Home</a></p>',
  );
