/**
 * The inflater thread (inflate-worker.ts) as the main thread sees it: one worker thread per process,
 * started with the first bundle, shared by every upload (each stream has an id), ended after a minute
 * with nothing to inflate. Batches of compressed bytes are transferred to it (not copied) and come back
 * once zlib has read them. Should the thread die, every stream on it is told (the uploads fail with a
 * 5xx) and the next bundle starts a new one.
 *
 * Why a thread: inflating on the main thread made V8 collect the inflater's output buffers (256 KiB
 * each, ~1 GiB per GiB received) as external memory of the main isolate, and that pressure set off
 * full mark-compacts of the app's whole heap, again and again, for as long as an upload lasted
 * (bench/README.md, Uploads). In a thread of its own the same buffers cost a collection of a heap of
 * a few MB.
 */
import { Worker } from 'node:worker_threads';
import type { TarMember } from './tar.ts';

/** Set by scripts/build.ts (esbuild `define`) in the bundle; undefined when running the sources. */
declare const __BUGZOT_BUNDLE__: boolean | undefined;

/** Main thread → inflater thread. */
export type ToWorker =
  | {
      t: 'open';
      id: number;
      maxListed: number;
      maxInflatedBytes: number;
      maxRatio: number;
      graceBytes: number;
    }
  /** `length` bytes of `buf` (transferred); `compressedIn`: compressed bytes of the file so far. */
  | { t: 'data'; id: number; buf: ArrayBuffer; length: number; compressedIn: number }
  /** The last byte was sent: finish the archive check and report (`done`). */
  | { t: 'end'; id: number }
  /** Forget the stream (the upload ended or will continue elsewhere). */
  | { t: 'close'; id: number };

/** Inflater thread → main thread. */
export type FromWorker =
  /** zlib read a batch: its buffer comes back (unless zlib failed on it). */
  | { t: 'ack'; id: number; buf?: ArrayBuffer }
  /** Inflating stopped before the end: the archive ended, or why it was refused. */
  | {
      t: 'stopped';
      id: number;
      why: 'ended' | 'gzip' | 'notTar' | 'expanded';
      message?: string;
      sawHeader?: boolean;
      overBytes?: boolean;
    }
  /** Answer to `end`. `finishError`: the archive check failed (truncated, no header). */
  | { t: 'done'; id: number; members: TarMember[]; count: number; sawHeader: boolean; finishError?: string };

/** What a stream's owner is told. */
export interface StreamListener {
  message(msg: FromWorker): void;
  /** The thread died: nothing more will come for this stream. */
  crashed(err: Error): void;
}

/** A thread with nothing to inflate for this long is ended (its memory goes back). */
const IDLE_MS = 60_000;

function workerUrl(): URL {
  if (typeof __BUGZOT_BUNDLE__ !== 'undefined' && __BUGZOT_BUNDLE__) {
    // In the bundle, import.meta.url names this source file (scripts/build.ts): the worker's bundle
    // is dist/inflate-worker.js.
    return new URL('../../dist/inflate-worker.js', import.meta.url);
  }
  // The sources: the thread registers the TypeScript loader itself, then loads the worker (Node 20
  // applies neither the main thread's loader nor `--import tsx` to a worker's modules).
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./inflate-worker.ts', import.meta.url).href;
  const code = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

class InflatePool {
  private worker: Worker | undefined;
  private streams = new Map<number, StreamListener>();
  private nextId = 1;
  private idle: NodeJS.Timeout | undefined;

  /** Opens a stream; returns its id. */
  open(listener: StreamListener, init: Omit<Extract<ToWorker, { t: 'open' }>, 't' | 'id'>): number {
    const worker = this.ensure();
    const id = this.nextId++;
    this.streams.set(id, listener);
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    worker.ref();
    worker.postMessage({ t: 'open', id, ...init } satisfies ToWorker);
    return id;
  }

  post(msg: ToWorker, transfer?: ArrayBuffer[]): void {
    if (!this.streams.has(msg.id)) return;
    this.worker!.postMessage(msg, transfer ?? []);
  }

  /** Forgets a stream (and tells the thread to drop it). */
  close(id: number): void {
    if (!this.streams.delete(id)) return;
    this.worker?.postMessage({ t: 'close', id } satisfies ToWorker);
    this.settle();
  }

  /** Ends the thread now (tests: a thread that dies mid-upload). */
  async terminate(): Promise<void> {
    await this.worker?.terminate();
  }

  /** With no stream open the thread does not keep the process alive, and ends after IDLE_MS. */
  private settle(): void {
    if (this.streams.size > 0 || !this.worker) return;
    this.worker.unref();
    if (this.idle) return;
    const worker = this.worker;
    this.idle = setTimeout(() => {
      this.idle = undefined;
      if (this.worker !== worker || this.streams.size > 0) return;
      // Forgotten first: a bundle arriving while it stops gets a new thread.
      this.worker = undefined;
      void worker.terminate();
    }, IDLE_MS).unref();
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(workerUrl(), {
      // Not `--import tsx` (see workerUrl) nor the main thread's other module flags.
      execArgv: [],
      // A small young generation: the thread allocates few JS objects (its heap stays under ~10 MB).
      resourceLimits: { maxYoungGenerationSizeMb: 2 },
    });
    this.worker = worker;
    worker.on('message', (msg: FromWorker) => {
      if (this.worker !== worker) return;
      this.streams.get(msg.id)?.message(msg);
    });
    let failure: Error | undefined;
    worker.on('error', (err) => {
      failure = err;
    });
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      if (this.idle) clearTimeout(this.idle);
      this.idle = undefined;
      const streams = [...this.streams.values()];
      this.streams.clear();
      const err = failure ?? new Error(`the inflater thread exited (code ${code})`);
      for (const listener of streams) listener.crashed(err);
    });
    return worker;
  }
}

/** The process's inflater thread. */
export const inflatePool = new InflatePool();
