/**
 * The shared page layout: skip link, header with the viewer's name and sign-out, main, footer with the
 * version. Every user-supplied string goes through `safe` (escaped); templates are type-checked TSX.
 */
import type { FastifyRequest } from 'fastify';
import type { Viewer } from '../access/index.ts';
import { versionLabel } from '../ops/routes.ts';
import { assetUrl } from './assets.ts';
import { attr } from './form-fields.tsx';

/** What every page tells the layout. */
export interface PageContext {
  viewer: Viewer;
  /** The form token of the viewer's session (signed-in pages) or of the anonymous CSRF cookie. */
  csrf: string;
  version: string;
}

/** The context of a page for a signed-in (or anonymous) viewer: who, their session's form token, the version. */
export function pageContext(request: FastifyRequest): PageContext {
  return { viewer: request.viewer, csrf: request.credential?.csrfToken ?? '', version: versionLabel };
}

/** The whole document around a page's content. */
export function Layout(props: { title: string; ctx: PageContext; children?: JSX.Element | JSX.Element[] }) {
  const { viewer, csrf, version } = props.ctx;
  return (
    <>
      {'<!doctype html>'}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width,initial-scale=1" />
          <title safe>{`${props.title} · Bugzot`}</title>
          <link rel="stylesheet" href={assetUrl('app.css')} />
        </head>
        <body>
          <a class="skip" href="#main">
            Skip to content
          </a>
          <header class="site">
            <a class="brand" href="/">
              Bugzot
            </a>
            <a href="/api/docs">API</a>
            {viewer.kind === 'user' ? (
              <>
                <a href="/bugs">Bugs</a>
                <a href="/bugs/new">File a bug</a>
                {viewer.isAdmin ? <a href="/admin">Admin</a> : ''}
                <a href="/account" safe>
                  {viewer.name}
                </a>
                <a href="/preferences/email">Email</a>
                <form method="post" action="/signout">
                  <input type="hidden" name="_csrf" value={csrf} />
                  <button type="submit" class="link">
                    Sign out
                  </button>
                </form>
              </>
            ) : (
              <a href="/signin">Sign in</a>
            )}
          </header>
          <main id="main">{props.children}</main>
          <footer class="site">
            Bugzot <span safe>{version}</span>
          </footer>
        </body>
      </html>
    </>
  );
}

/** A labelled form field with its error beside it (and the typed value kept). */
export function Field(props: {
  name: string;
  label: string;
  type?: string;
  value?: string | undefined;
  error?: string | undefined;
  autocomplete?: string;
  required?: boolean;
}) {
  const id = `f-${props.name}`;
  return (
    <>
      <label for={id} safe>
        {props.label}
      </label>
      <input
        id={id}
        name={props.name}
        type={props.type ?? 'text'}
        value={attr(props.value)}
        autocomplete={props.autocomplete}
        required={props.required ?? true}
        aria-invalid={props.error ? 'true' : undefined}
        aria-describedby={props.error ? `${id}-error` : undefined}
      />
      {props.error ? (
        <p id={`${id}-error`} class="field-error" safe>
          {props.error}
        </p>
      ) : (
        ''
      )}
    </>
  );
}

/** An error message announced to screen readers; nothing when there is none. */
export function Alert(props: { message?: string | undefined }) {
  return props.message ? (
    <p class="alert" role="alert" safe>
      {props.message}
    </p>
  ) : (
    ''
  );
}

/** The first two cells of a bug's row in any bug table: its number and its summary, both linking to it. */
export function BugCells(props: { id: number; summary: string }) {
  return (
    <>
      <td>
        <a href={`/bugs/${props.id}`}>{String(props.id)}</a>
      </td>
      <td>
        <a href={`/bugs/${props.id}`} safe>
          {props.summary}
        </a>
      </td>
    </>
  );
}

/** A bug's status as people read it: "RESOLVED FIXED", or just "NEW". */
export const statusText = (b: { status: string; resolution: string | null }) =>
  b.resolution ? `${b.status} ${b.resolution}` : b.status;
