/**
 * The storage interface and its errors. Where attachment bytes live: a local folder (the default) or S3-compatible object storage, behind one
 * interface. An object is first *staged* (written, possibly over several requests and processes, at
 * offsets the database records as durable), then *committed* into its final, readable form.
 */
import type { Readable, Writable } from 'node:stream';
import { AppError } from '../platform/errors.ts';

/** Backend state of a staged object, kept in the database between requests (JSON). */
export type StagedState = Record<string, unknown>;

/** How a staged write ends: the whole object arrived, keep what arrived, or throw this write away. */
export type SettleMode = 'complete' | 'keep' | 'discard';

/** One write into a staged object, starting at the offset it was opened at. */
export interface StagedWriter {
  /** Pipe the bytes into this. */
  readonly stream: Writable;
  /**
   * After the stream finished or failed: makes what arrived durable (`keep`, `complete`) or drops it
   * (`discard`), and returns the durable length and the backend state to record with it.
   */
  settle(mode: SettleMode): Promise<{ length: number; state: StagedState }>;
}

/** A storage backend. */
export interface Storage {
  readonly kind: 'local' | 's3';
  /**
   * Opens staged object `key` for writing at `offset` (0 creates it), given the state recorded with
   * that offset. Bytes a crashed writer left beyond `offset` are ignored and overwritten.
   */
  openStaged(key: string, offset: number, state: StagedState): Promise<StagedWriter>;
  /** Turns a complete staged object of `length` bytes into the final object `key`. */
  commitStaged(key: string, length: number, state: StagedState): Promise<void>;
  /** Removes a staged object and every byte it holds (missing is fine). */
  discardStaged(key: string, state: StagedState): Promise<void>;
  /** Streams final object `key`, or its bytes `start`..`end` (inclusive). */
  read(key: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Removes final object `key` (missing is fine). */
  remove(key: string): Promise<void>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** A storage failure the client can be told about without details: 507 when full, else 503. */
export class StorageError extends AppError {
  constructor(
    status: 503 | 507,
    readonly causeError: unknown,
  ) {
    super(
      status,
      status === 507 ? 'insufficient_storage' : 'storage_unavailable',
      status === 507
        ? 'The attachment store is full; nothing was kept. Try again later or tell an administrator.'
        : 'The attachment store is unavailable; nothing was kept. Try again later.',
    );
  }
}

/** Wraps a low-level error from a backend into a StorageError (AppErrors pass through). */
export function storageFailure(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const code = (err as { code?: string; name?: string } | null)?.code ?? (err as { name?: string })?.name;
  const full =
    code === 'ENOSPC' || code === 'EDQUOT' || code === 'EntityTooLarge' || code === 'QuotaExceeded';
  return new StorageError(full ? 507 : 503, err);
}

/** Raised by `read` when the object does not exist. */
export class ObjectMissing extends Error {
  constructor(key: string) {
    super(`storage object ${key} is missing`);
    this.name = 'ObjectMissing';
  }
}

/** Raised when a staged object holds fewer bytes than the database recorded (lost in a machine crash). */
export class StagedBytesLost extends Error {
  constructor(key: string, has: number, expected: number) {
    super(`staged object ${key} holds ${has} bytes, the database recorded ${expected}`);
    this.name = 'StagedBytesLost';
  }
}
