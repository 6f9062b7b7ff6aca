/** The attachment suite (test/helpers/attachments.ts) against the S3 backend on a loopback s3rver. */
import { attachmentSuite } from './helpers/attachments.ts';

attachmentSuite('s3');
