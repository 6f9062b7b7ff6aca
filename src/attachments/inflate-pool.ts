/**
 * The inflater thread (inflate-worker.ts) as the main thread sees it: one worker thread per process,
 * started with the first bundle, shared by every upload (each stream has an id), ended after a minute
 * with nothing to inflate. Batches of compressed bytes are gathered in slots of shared memory
 * (`SharedArrayBuffer`s the thread is given once): a batch is a message naming its slot, and the slot
 * comes back to the pool once zlib has read it. Should the thread die, every stream on it is told (the
 * uploads fail with a 5xx) and the next bundle starts a new one.
 *
 * Why a thread: inflating on the main thread made V8 collect the inflater's output buffers (256 KiB
 * each, ~1 GiB per GiB received) as external memory of the main isolate, and that pressure set off
 * full mark-compacts of the app's whole heap, again and again, for as long as an upload lasted
 * (bench/README.md, Uploads). In a thread of its own the same buffers cost a collection of a heap of
 * a few MB.
 *
 * Why shared slots: transferring a batch's ArrayBuffer to the thread and back made a new ArrayBuffer of
 * the main isolate for every MiB received (the one that came back), another GiB of external memory per
 * GiB for V8 to account for and sweep; the main isolate's full-collection storms came back with it
 * (bench/README.md). A slot is made once and reused: a batch allocates nothing on either side.
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
      /** Hash every byte sent (SHA-256), and answer the digest with `done`. */
      hash: boolean;
      maxListed: number;
      maxInflatedBytes: number;
      maxRatio: number;
      graceBytes: number;
    }
  /** A slot of shared memory the batches of any stream may come in (sent once per slot and thread). */
  | { t: 'slot'; slot: number; sab: SharedArrayBuffer }
  /** The slot is no longer used: the thread drops its view of it. */
  | { t: 'forget'; slot: number }
  /** The first `length` bytes of a slot; `compressedIn`: compressed bytes of the file so far. */
  | { t: 'data'; id: number; slot: number; length: number; compressedIn: number }
  /** The last byte was sent: finish the archive check and report (`done`). */
  | { t: 'end'; id: number }
  /** Forget the stream (the upload ended or will continue elsewhere). */
  | { t: 'close'; id: number };

/** Inflater thread → main thread. */
export type FromWorker =
  /** zlib is done with a batch (read it, or the stream ended or failed): its slot may be reused. */
  | { t: 'ack'; id: number; slot: number }
  /** Inflating stopped before the end: the archive ended, or why it was refused. */
  | {
      t: 'stopped';
      id: number;
      why: 'ended' | 'gzip' | 'notTar' | 'expanded';
      message?: string;
      sawHeader?: boolean;
      overBytes?: boolean;
    }
  /**
   * Answer to `end`: the member list; `sha256` (hex) when the stream was opened with `hash`;
   * `finishError`: the archive check failed (truncated, no header).
   */
  | {
      t: 'done';
      id: number;
      sha256?: string;
      members: TarMember[];
      count: number;
      sawHeader: boolean;
      finishError?: string;
    };

/** What a stream's owner is told. */
export interface StreamListener {
  message(msg: FromWorker): void;
  /** The thread died: nothing more will come for this stream. */
  crashed(err: Error): void;
}

/** A thread with nothing to inflate for this long is ended (its memory goes back). */
const IDLE_MS = 60_000;

/** Size of a slot: the batches the inflater is fed. */
export const SLOT_BYTES = 1024 * 1024;
/**
 * Free slots kept for reuse (process-wide) once no stream is open. While streams are open every slot
 * that comes back is kept: more are made only while more uploads run at once than ever before, and
 * none is dropped and made again (a dropped slot's memory is freed only by a full collection of both
 * isolates; 20 concurrent uploads made and dropped ~300 of them, and the process held the difference).
 */
const FREE_SLOTS_MAX = 8;

/** A slot of shared memory a batch is gathered in, lent to one upload at a time. */
export interface Slot {
  readonly index: number;
  readonly sab: SharedArrayBuffer;
  /** The whole slot, for the main thread to write into. */
  readonly buf: Buffer;
}

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
  private nextSlot = 1;
  private freeSlots: Slot[] = [];
  /** Slots sent to the thread and not yet acknowledged. */
  private lent = new Map<number, Slot>();
  /** Slots the current thread holds a view of. */
  private known = new Set<number>();

  /** A free slot (a new one when none is free). */
  takeSlot(): Slot {
    const free = this.freeSlots.pop();
    if (free) return free;
    const sab = new SharedArrayBuffer(SLOT_BYTES);
    return { index: this.nextSlot++, sab, buf: Buffer.from(sab) };
  }

  /** Gives back a slot that was not sent (or came back). */
  giveSlot(slot: Slot): void {
    if (this.freeSlots.length < FREE_SLOTS_MAX || this.streams.size > 0) {
      this.freeSlots.push(slot);
      return;
    }
    this.drop(slot);
  }

  /** Lets a slot go: the thread drops its view, and the memory goes with the next collections. */
  private drop(slot: Slot): void {
    if (this.known.delete(slot.index))
      this.worker?.postMessage({ t: 'forget', slot: slot.index } satisfies ToWorker);
  }

  /**
   * Sends the first `length` bytes of `slot` to stream `id`; the slot is lent until the thread
   * acknowledges it. False when the stream is gone (the slot is back in the pool; no ack will come).
   */
  sendSlot(id: number, slot: Slot, length: number, compressedIn: number): boolean {
    const worker = this.worker;
    if (!worker || !this.streams.has(id)) {
      this.giveSlot(slot);
      return false;
    }
    if (!this.known.has(slot.index)) {
      this.known.add(slot.index);
      worker.postMessage({ t: 'slot', slot: slot.index, sab: slot.sab } satisfies ToWorker);
    }
    this.lent.set(slot.index, slot);
    worker.postMessage({ t: 'data', id, slot: slot.index, length, compressedIn } satisfies ToWorker);
    return true;
  }

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

  /** Tells the thread the stream's last byte was sent. */
  end(id: number): void {
    if (!this.streams.has(id)) return;
    this.worker!.postMessage({ t: 'end', id } satisfies ToWorker);
  }

  /** Forgets a stream (and tells the thread to drop it). */
  close(id: number): void {
    if (!this.streams.delete(id)) return;
    this.worker?.postMessage({ t: 'close', id } satisfies ToWorker);
    this.settle();
  }

  /** Slots lent to the thread, free in the pool, and made so far (tests: every slot comes back, none churns). */
  slotCounts(): { lent: number; free: number; made: number } {
    return { lent: this.lent.size, free: this.freeSlots.length, made: this.nextSlot - 1 };
  }

  /** Ends the thread now (tests: a thread that dies mid-upload). */
  async terminate(): Promise<void> {
    await this.worker?.terminate();
  }

  /** With no stream open the thread does not keep the process alive, and ends after IDLE_MS. */
  private settle(): void {
    if (this.streams.size > 0) return;
    // No upload is open: the slots beyond the few kept go.
    for (const slot of this.freeSlots.splice(FREE_SLOTS_MAX)) this.drop(slot);
    if (!this.worker) return;
    this.worker.unref();
    if (this.idle) return;
    const worker = this.worker;
    this.idle = setTimeout(() => {
      this.idle = undefined;
      if (this.worker !== worker || this.streams.size > 0) return;
      // Forgotten first: a bundle arriving while it stops gets a new thread.
      this.forgetWorker();
      void worker.terminate();
    }, IDLE_MS).unref();
  }

  /** The thread is gone or going: nothing reads the lent slots any more, and the next thread knows none. */
  private forgetWorker(): void {
    this.worker = undefined;
    this.known.clear();
    for (const slot of this.lent.values()) this.giveSlot(slot);
    this.lent.clear();
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
      if (msg.t === 'ack') {
        // Back to the pool whether or not its stream is still open.
        const slot = this.lent.get(msg.slot);
        this.lent.delete(msg.slot);
        if (slot) this.giveSlot(slot);
      }
      this.streams.get(msg.id)?.message(msg);
    });
    let failure: Error | undefined;
    worker.on('error', (err) => {
      failure = err;
    });
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.forgetWorker();
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
