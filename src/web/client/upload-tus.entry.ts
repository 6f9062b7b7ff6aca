/**
 * The tus client (tus-js-client) for browser uploads, loaded by upload.entry.ts only when someone
 * uploads: pages stay light for everybody else.
 */
import { Upload } from 'tus-js-client';

(window as unknown as { BugzotTus: { Upload: typeof Upload } }).BugzotTus = { Upload };
