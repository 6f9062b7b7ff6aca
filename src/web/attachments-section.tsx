/**
 * The attachments part of the bug page: the list of the bug's attachments (rendered here; the upload script
 * refreshes it from the API after an upload and lets bundles be opened in place), and the upload form (tus,
 * with a progress bar and resume, by /assets/upload.js). Bundles and their files are browsed on the
 * attachment pages, with or without JavaScript.
 */
import type { AttachmentRow } from '../attachments/index.ts';
import { Script } from './assets.ts';
import type { PageContext } from './layout.tsx';

/** A size for people: 1.5 MB, 820 KB, 12 bytes. */
function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** The bug's attachments, rendered on the server (the upload script refreshes the list after an upload). */
function AttachmentList(props: { bugId: number; items: AttachmentRow[] }) {
  if (props.items.length === 0) return <p class="muted">No attachments yet.</p>;
  return (
    <>
      <ul class="attachment-list">
        {props.items.map((a) => (
          <li>
            <a href={`/attachments/${a.id}`} safe>
              {a.file_name}
            </a>
            <span safe>{` — ${formatBytes(a.size)}, ${a.kind}, by ${a.uploader_name}, ${a.created_at
              .toISOString()
              .slice(0, 10)} `}</span>
            <a href={`/api/v1/attachments/${a.id}/content`} download="">
              Download
            </a>
            {a.kind === 'bundle' ? (
              <>
                {' · '}
                <a href={`/attachments/${a.id}`}>{`Files in this bundle (${a.member_count ?? 0})`}</a>
              </>
            ) : (
              ''
            )}
          </li>
        ))}
      </ul>
      <a href={`/attachments?bug_id=${props.bugId}`}>All attachments of this bug</a>
    </>
  );
}

/** The attachments section of bug `bugId`; `items` when the page loaded them (else a link to the list). */
export function AttachmentsSection(props: {
  bugId: number;
  ctx: PageContext;
  items?: AttachmentRow[] | undefined;
}) {
  const { bugId } = props;
  return (
    <section id="attachments" class="attachments" aria-labelledby="attachments-heading">
      <h2 id="attachments-heading">Attachments</h2>
      <div id="attachment-list" data-bug={String(bugId)} aria-live="polite">
        {props.items ? (
          <AttachmentList bugId={bugId} items={props.items} />
        ) : (
          <p>
            <a href={`/attachments?bug_id=${bugId}`}>Attachments of this bug</a> (logs, screenshots,
            diagnostic bundles and the files inside them)
          </p>
        )}
      </div>
      <form id="attachment-upload" class="card" data-bug={String(bugId)} method="get" action="/attachments">
        <input type="hidden" name="bug_id" value={String(bugId)} />
        <label for="attachment-file">Attach a file (a log, a screenshot, a diagnostic bundle)</label>
        <input type="file" id="attachment-file" name="file" />
        <label for="attachment-comment">Comment (optional)</label>
        <textarea id="attachment-comment" name="comment" rows="2"></textarea>
        <p class="muted">
          Large files are sent in pieces and resume by themselves after a lost connection; after a reload,
          choose the same file again to continue where it stopped. Without JavaScript, use the API:{' '}
          <code
            safe
          >{`curl -T file.tgz -H "Authorization: Bearer <key>" /api/v1/bugs/${bugId}/attachments/`}</code>
        </p>
        <button type="submit">Upload</button>
        <progress class="upload-progress" max="100" value="0" aria-label="Upload progress" hidden></progress>
        <p class="upload-status" role="status" aria-live="polite"></p>
      </form>
      {Script({ name: 'upload' })}
    </section>
  );
}
