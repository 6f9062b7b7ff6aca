/**
 * Browser uploads with tus (resumable): a progress bar, automatic retries after a dropped connection,
 * and after a page reload the same file picked again resumes where it stopped (the upload's URL is
 * remembered in localStorage by tus-js-client's fingerprint).
 *
 * Two places use it:
 * - the bug page's attachment form (`form#attachment-upload`, data-bug = the bug id);
 * - the file-a-bug form (`form#file-bug-form` with `input#attachment`): with a file chosen, the bug is
 *   filed through the JSON API first, then the file is uploaded, then the browser goes to the bug.
 *   Without a file the form submits as usual.
 */
import type { DetailedError, Upload } from 'tus-js-client';

/** tus-js-client, loaded on first use from its own bundle (upload-tus.entry.ts). */
let tus: Promise<{ Upload: typeof Upload }> | undefined;
function loadTus(): Promise<{ Upload: typeof Upload }> {
  tus ??= new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = '/assets/upload-tus.js';
    script.onload = () => resolve((window as unknown as { BugzotTus: { Upload: typeof Upload } }).BugzotTus);
    script.onerror = () => {
      tus = undefined;
      reject(new Error('the upload script could not be loaded; check the connection and try again'));
    };
    document.head.append(script);
  });
  return tus;
}

const ENDPOINT = '/api/v1/uploads';
const RETRIES = [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000, 60000, 60000];

function csrfToken(): string {
  const input = document.querySelector<HTMLInputElement>('input[name="_csrf"]');
  return input?.value ?? '';
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** Where progress is shown: a <progress> bar and a status line (created when the page has none). */
function progressUi(container: HTMLElement): { bar: HTMLProgressElement; status: HTMLElement } {
  let bar = container.querySelector<HTMLProgressElement>('progress.upload-progress');
  let status = container.querySelector<HTMLElement>('.upload-status');
  if (!bar) {
    bar = document.createElement('progress');
    bar.className = 'upload-progress';
    bar.setAttribute('aria-label', 'Upload progress');
    bar.max = 100;
    bar.value = 0;
    container.append(bar);
  }
  if (!status) {
    status = document.createElement('p');
    status.className = 'upload-status';
    status.setAttribute('role', 'status');
    status.setAttribute('aria-live', 'polite');
    container.append(status);
  }
  return { bar, status };
}

/** Uploads `file` to bug `bugId`, resuming an earlier interrupted upload of the same file; resolves when done. */
function uploadFile(
  file: File,
  bugId: number,
  comment: string,
  ui: { bar: HTMLProgressElement; status: HTMLElement },
): Promise<void> {
  return loadTus().then(
    ({ Upload }) =>
      new Promise<void>((resolve, reject) => {
        ui.bar.hidden = false;
        const upload = new Upload(file, {
          endpoint: ENDPOINT,
          headers: { 'X-CSRF-Token': csrfToken() },
          metadata: { filename: file.name, bug_id: String(bugId), ...(comment ? { comment } : {}) },
          chunkSize: 32 * 1024 * 1024,
          retryDelays: RETRIES,
          removeFingerprintOnSuccess: true,
          onProgress(sent, total) {
            const pct = total ? Math.floor((sent / total) * 100) : 0;
            ui.bar.value = pct;
            ui.status.textContent = `Uploading ${file.name}: ${formatBytes(sent)} of ${formatBytes(total)} (${pct}%)`;
          },
          onShouldRetry(err, attempt) {
            ui.status.textContent = `Connection lost; retrying (attempt ${attempt + 1})…`;
            const status = (err as DetailedError).originalResponse?.getStatus() ?? 0;
            return status === 0 || status === 409 || status === 423 || status >= 500;
          },
          onSuccess() {
            ui.bar.value = 100;
            ui.status.textContent = `${file.name} is attached.`;
            resolve();
          },
          onError(err) {
            let message = err.message;
            try {
              const body = (err as DetailedError).originalResponse?.getBody();
              if (body)
                message = (JSON.parse(body) as { error?: { message?: string } }).error?.message ?? message;
            } catch {
              // not JSON: keep the client's message
            }
            ui.status.textContent = `The upload failed: ${message}`;
            reject(err);
          },
        });
        upload.findPreviousUploads().then((previous) => {
          const last = previous[0];
          if (last) {
            ui.status.textContent = `Resuming the earlier upload of ${file.name}…`;
            upload.resumeFromPreviousUpload(last);
          }
          upload.start();
        }, reject);
      }),
    (err: Error) => {
      ui.status.textContent = `The upload failed: ${err.message}`;
      throw err;
    },
  );
}

/** The bug page: upload with progress, then reload to show the new attachment. */
function bugPageForm(form: HTMLFormElement): void {
  const bugId = Number(form.dataset['bug']);
  const input = form.querySelector<HTMLInputElement>('input[type="file"]');
  if (!bugId || !input) return;
  const ui = progressUi(form);
  // Reveal the JavaScript-only controls.
  for (const el of form.querySelectorAll<HTMLElement>('[data-js]')) el.hidden = false;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const file = input.files?.[0];
    if (!file) {
      ui.status.textContent = 'Choose a file first.';
      return;
    }
    const comment = (form.querySelector<HTMLTextAreaElement>('[name="comment"]')?.value ?? '').trim();
    const button = form.querySelector<HTMLButtonElement>('button[type="submit"]');
    if (button) button.disabled = true;
    uploadFile(file, bugId, comment, ui).then(
      () => window.location.reload(),
      () => {
        if (button) button.disabled = false;
      },
    );
  });
}

/** The fields of the filing form the JSON API takes. */
function bugFromForm(form: HTMLFormElement): Record<string, unknown> {
  const data = new FormData(form);
  const out: Record<string, unknown> = {};
  for (const key of ['product_id', 'version_id', 'component_id']) {
    const v = data.get(key);
    if (typeof v === 'string' && v) out[key] = Number(v);
  }
  for (const key of ['summary', 'description', 'severity', 'priority']) {
    const v = data.get(key);
    if (typeof v === 'string' && v !== '') out[key] = v;
  }
  if (data.get('confidential')) out['confidential'] = true;
  return out;
}

function showError(form: HTMLFormElement, message: string): void {
  let alert = form.parentElement?.querySelector<HTMLElement>('.upload-error');
  if (!alert) {
    alert = document.createElement('div');
    alert.className = 'alert upload-error';
    alert.setAttribute('role', 'alert');
    form.before(alert);
  }
  alert.textContent = message;
  alert.focus?.();
}

/** The file-a-bug page: file through the API, upload the file, go to the bug. */
function fileBugForm(form: HTMLFormElement, input: HTMLInputElement): void {
  const ui = progressUi(input.parentElement ?? form);
  ui.bar.hidden = true;
  form.addEventListener('submit', (event) => {
    const file = input.files?.[0];
    if (!file) return; // no file: the form goes as usual
    event.preventDefault();
    const button = form.querySelector<HTMLButtonElement>('button[type="submit"]:not([name="step"])');
    if (button) button.disabled = true;
    (async () => {
      const res = await fetch('/api/v1/bugs', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'X-CSRF-Token': csrfToken() },
        body: JSON.stringify(bugFromForm(form)),
        credentials: 'same-origin',
      });
      const body = (await res.json()) as { id?: number; error?: { message?: string; field?: string } };
      if (!res.ok || !body.id) {
        const field = body.error?.field ? ` (${body.error.field})` : '';
        throw new Error(`${body.error?.message ?? `Filing failed (${res.status})`}${field}`);
      }
      try {
        await uploadFile(file, body.id, '', ui);
      } catch {
        // The bug exists: go there, where the file can be attached again.
      }
      window.location.assign(`/bugs/${body.id}`);
    })().catch((err: Error) => {
      showError(form, err.message);
      if (button) button.disabled = false;
    });
  });
}

interface AttachmentJson {
  id: number;
  file_name: string;
  kind: string;
  size: number;
  uploader: { name: string };
  created_at: string;
  member_count: number | null;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string,
  attrs: Record<string, string> = {},
) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/** Lists a bundle's files inside `target` (first 1000, with links to each file's text). */
async function showMembers(id: number, target: HTMLElement): Promise<void> {
  const res = await fetch(`/api/v1/attachments/${id}/members?limit=1000`, { credentials: 'same-origin' });
  if (!res.ok) {
    target.textContent = 'The file list could not be loaded.';
    return;
  }
  const body = (await res.json()) as {
    members: { index: number; path: string; size: number; type: string }[];
    next_after: number | null;
  };
  const list = el('ul', undefined, { class: 'members' });
  for (const m of body.members) {
    const li = el('li');
    if (m.type === 'file') {
      li.append(
        el('a', m.path, { href: `/attachments/${id}/members/${m.index}` }),
        ` (${formatBytes(m.size)})`,
      );
    } else li.textContent = m.path;
    list.append(li);
  }
  target.replaceChildren(list);
  if (body.next_after !== null) target.append(el('a', 'All files…', { href: `/attachments/${id}` }));
}

/** Fills the bug page's attachment list from the API. */
async function renderList(container: HTMLElement): Promise<void> {
  const bugId = Number(container.dataset['bug']);
  const res = await fetch(`/api/v1/bugs/${bugId}/attachments`, { credentials: 'same-origin' });
  if (!res.ok) return; // the server-rendered link stays
  const { attachments } = (await res.json()) as { attachments: AttachmentJson[] };
  if (attachments.length === 0) {
    container.replaceChildren(el('p', 'No attachments yet.', { class: 'muted' }));
    return;
  }
  const list = el('ul', undefined, { class: 'attachment-list' });
  for (const a of attachments) {
    const li = el('li');
    li.append(
      el('a', a.file_name, { href: `/attachments/${a.id}` }),
      ` — ${formatBytes(a.size)}, ${a.kind}, by ${a.uploader.name}, ${a.created_at.slice(0, 10)} `,
      el('a', 'Download', { href: `/api/v1/attachments/${a.id}/content`, download: '' }),
    );
    if (a.kind === 'bundle') {
      const details = el('details');
      details.append(el('summary', `Files in this bundle (${a.member_count ?? 0})`));
      const body = el('div', 'Loading…');
      details.append(body);
      details.addEventListener('toggle', () => {
        if (details.open && !details.dataset['loaded']) {
          details.dataset['loaded'] = '1';
          void showMembers(a.id, body);
        }
      });
      li.append(details);
    }
    list.append(li);
  }
  container.replaceChildren(
    list,
    el('a', 'All attachments of this bug', { href: `/attachments?bug_id=${bugId}` }),
  );
}

function init(): void {
  const bugForm = document.querySelector<HTMLFormElement>('form#attachment-upload');
  if (bugForm) bugPageForm(bugForm);
  // The server rendered the list; the script redraws it only to open bundles in place.
  const list = document.querySelector<HTMLElement>('#attachment-list[data-bug]');
  if (list) void renderList(list);
  const fileForm = document.querySelector<HTMLFormElement>('form#file-bug-form');
  const attachment = document.querySelector<HTMLInputElement>('input#attachment');
  if (fileForm && attachment) fileBugForm(fileForm, attachment);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
