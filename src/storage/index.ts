/**
 * Where attachment bytes live: a local folder (the default) or S3-compatible object storage, behind one
 * interface (types.ts). Choose with STORAGE_BACKEND.
 */
import type { Config } from '../config.ts';
import { LocalStorage } from './local.ts';
import { S3Storage } from './s3.ts';
import type { Storage } from './types.ts';

export * from './types.ts';
export { LocalStorage } from './local.ts';
export { S3Storage } from './s3.ts';

/** Opens the backend the configuration names. */
export function openStorage(
  config: Config,
  opts: { localRoot?: string; maxObjectBytes?: number } = {},
): Storage {
  if (config.storage.backend === 's3') {
    return new S3Storage(config.storage.s3, opts.maxObjectBytes ?? config.attachmentMaxBytes);
  }
  return new LocalStorage(opts.localRoot ?? `${config.dataDir}/attachments`);
}
