/**
 * Attachments on the local folder backend: curl -T, tus-js-client (cut connections, chunks), checksums,
 * offsets, limits, bundles, ranges, visibility, housekeeping, concurrency. The same suite runs against
 * S3 in attachments-s3.test.ts.
 */
import { attachmentSuite } from './helpers/attachments.ts';

attachmentSuite('local');
