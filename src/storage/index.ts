/**
 * Where attachment bytes live: a local folder (the default) or S3-compatible object storage, behind one
 * interface (types.ts). Choose with STORAGE_BACKEND.
 */
import type { Readable } from 'node:stream';
import type { Config } from '../config.ts';
import { LocalStorage } from './local.ts';
import type { S3Settings, S3Storage } from './s3.ts';
import type { StagedState, StagedWriter, Storage } from './types.ts';

export * from './types.ts';
export { LocalStorage } from './local.ts';

/**
 * The S3 backend with its SDK loaded on first use: the AWS SDK is a sizeable part of the heap, and a
 * process that stores locally never needs it (a smaller heap is also cheaper to collect while uploads run).
 */
class LazyS3Storage implements Storage {
  readonly kind = 's3' as const;
  private backend: Promise<S3Storage> | undefined;
  constructor(
    private readonly settings: S3Settings,
    private readonly maxObjectBytes: number,
  ) {
    // The one check the backend makes at construction, kept at start.
    if (!settings.bucket) throw new Error('S3_BUCKET is required');
  }
  private open(): Promise<S3Storage> {
    this.backend ??= import('./s3.ts').then((m) => new m.S3Storage(this.settings, this.maxObjectBytes));
    return this.backend;
  }
  async openStaged(key: string, offset: number, state: StagedState): Promise<StagedWriter> {
    return (await this.open()).openStaged(key, offset, state);
  }
  async commitStaged(key: string, length: number, state: StagedState): Promise<void> {
    return (await this.open()).commitStaged(key, length, state);
  }
  async discardStaged(key: string, state: StagedState): Promise<void> {
    return (await this.open()).discardStaged(key, state);
  }
  async read(key: string, range?: { start: number; end: number }): Promise<Readable> {
    return (await this.open()).read(key, range);
  }
  async remove(key: string): Promise<void> {
    return (await this.open()).remove(key);
  }
  async close(): Promise<void> {
    if (this.backend) await (await this.backend).close();
  }
}

/** Opens the backend the configuration names. */
export function openStorage(
  config: Config,
  opts: { localRoot?: string; maxObjectBytes?: number } = {},
): Storage {
  if (config.storage.backend === 's3') {
    return new LazyS3Storage(config.storage.s3, opts.maxObjectBytes ?? config.attachmentMaxBytes);
  }
  return new LocalStorage(opts.localRoot ?? `${config.dataDir}/attachments`);
}
