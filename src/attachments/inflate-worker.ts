/**
 * The thread that inflates diagnostic bundles and reads their tar headers (see inflate-pool.ts), and
 * hashes (SHA-256) the bundles the main thread asks it to. Its isolate holds next to nothing, so the
 * inflater's output buffers (about 1 GiB of short-lived ArrayBuffers per GiB received) are collected
 * here at little cost, instead of making the main isolate run full collections of the app's heap. One
 * thread serves every upload of the process; each stream is known by the id the main thread gave it.
 * It reports facts (ended, damaged, not tar, over the inflation limits, the member list, the digest);
 * the main thread turns them into refusals.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { createGunzip, type Gunzip, type ZlibOptions } from 'node:zlib';
import { scavengeEvery } from '../platform/young-gc.ts';
import type { FromWorker, ToWorker } from './inflate-pool.ts';
import { NotTar, TarReader } from './tar.ts';

const port = parentPort!;

/**
 * The inflater's output buffers are freed only by a collection, and this isolate allocates next to no
 * JS objects, so V8 would collect only when their external memory reached its limit (~30 MB of dead
 * buffers held at any time, resident memory the process does not need). A scavenge of this tiny young
 * generation every 4 MiB of output costs a few microseconds and keeps that under ~10 MB.
 */
const outputInflated = scavengeEvery(4 * 1024 * 1024);

interface Stream {
  gunzip: Gunzip;
  /** Every byte of the file, in order, when the main thread asked for the digest (`open.hash`). */
  hash: Hash | undefined;
  tar: TarReader;
  /** Stopped inflating: the archive ended, or the main thread was told why not. */
  done: boolean;
  inflated: number;
  compressedIn: number;
  maxInflatedBytes: number;
  maxRatio: number;
  graceBytes: number;
  /** Slots written to zlib and not yet acknowledged. */
  pending: Set<number>;
}

const streams = new Map<number, Stream>();
/** Views of the slots of shared memory the main thread sends batches in, by slot number. */
const slots = new Map<number, Buffer>();
const send = (msg: FromWorker) => port.postMessage(msg);

function stop(s: Stream, msg: FromWorker): void {
  if (s.done) return;
  s.done = true;
  s.gunzip.destroy();
  send(msg);
}

function open(msg: Extract<ToWorker, { t: 'open' }>): void {
  const { id } = msg;
  // The main thread sends batches of up to 1 MiB and at most two at a time. Output in 1 MiB buffers:
  // each output buffer costs a round trip to the libuv pool and a JS callback, and at 256 KiB those
  // doubled the CPU of inflating (1.16 against 0.61 CPU-s per GiB out, stored or text alike, measured).
  const gunzip = createGunzip({
    chunkSize: 1024 * 1024,
    writableHighWaterMark: 2 * 1024 * 1024,
  } as ZlibOptions);
  const s: Stream = {
    gunzip,
    hash: msg.hash ? createHash('sha256') : undefined,
    tar: new TarReader(msg.maxListed),
    done: false,
    inflated: 0,
    compressedIn: 0,
    maxInflatedBytes: msg.maxInflatedBytes,
    maxRatio: msg.maxRatio,
    graceBytes: msg.graceBytes,
    pending: new Set(),
  };
  streams.set(id, s);
  gunzip.on('data', (out: Buffer) => {
    if (s.done) return;
    s.inflated += out.length;
    outputInflated(out.length);
    const overBytes = s.inflated > s.maxInflatedBytes;
    if (overBytes || (s.inflated > s.graceBytes && s.inflated > s.maxRatio * s.compressedIn)) {
      stop(s, { t: 'stopped', id, why: 'expanded', overBytes });
      return;
    }
    try {
      s.tar.push(out);
      if (s.tar.ended) stop(s, { t: 'stopped', id, why: 'ended' });
    } catch (err) {
      if (!(err instanceof NotTar)) throw err;
      stop(s, { t: 'stopped', id, why: 'notTar', sawHeader: s.tar.sawHeader, message: err.message });
    }
  });
  gunzip.on('error', (err) => {
    stop(s, { t: 'stopped', id, why: 'gzip', message: err.message });
    // zlib reports an error once the thread pool is done with the write that failed, and that write's
    // callback never comes; the writes queued behind it get theirs (ERR_STREAM_DESTROYED) on the next
    // tick. Whatever is still pending after them is free.
    setImmediate(() => {
      for (const slot of s.pending) ack(s, id, slot);
    });
  });
}

function data(msg: Extract<ToWorker, { t: 'data' }>): void {
  const { id, slot } = msg;
  const view = slots.get(slot);
  // A batch in a slot this thread was never given would go uninspected: fail loudly (the thread
  // ends, its uploads fail with a 503) rather than that.
  if (!view) throw new Error(`batch in unknown slot ${slot}`);
  const s = streams.get(id);
  if (s) {
    s.compressedIn = msg.compressedIn;
    // Hashed whether or not it is still inflated: the digest covers the file to its last byte.
    s.hash?.update(view.subarray(0, msg.length));
  }
  if (!s || s.done) {
    send({ t: 'ack', id, slot });
    return;
  }
  // The slot goes back once zlib is done with it: the write's callback comes after the thread pool
  // read the bytes, also when the stream was destroyed meanwhile (not when zlib failed on it: see
  // the error handler).
  s.pending.add(slot);
  s.gunzip.write(view.subarray(0, msg.length), () => ack(s, id, slot));
}

/** Gives a slot back to the main thread, once. */
function ack(s: Stream, id: number, slot: number): void {
  if (s.pending.delete(slot)) send({ t: 'ack', id, slot });
}

async function end(id: number): Promise<void> {
  const s = streams.get(id);
  if (!s) {
    // (No digest: an upload that asked for one fails rather than go unhashed.)
    send({ t: 'done', id, members: [], count: 0, sawHeader: false, finishError: 'no tar header' });
    return;
  }
  if (!s.done) {
    const g = s.gunzip;
    await new Promise<void>((resolve) => {
      g.once('end', resolve);
      g.once('close', resolve);
      g.end();
    });
  }
  let finishError: string | undefined;
  try {
    s.tar.finish();
  } catch (err) {
    if (!(err instanceof NotTar)) throw err;
    finishError = err.message;
  }
  streams.delete(id);
  s.done = true;
  s.gunzip.destroy();
  send({
    t: 'done',
    id,
    ...(s.hash ? { sha256: s.hash.digest('hex') } : {}),
    members: s.tar.members,
    count: s.tar.count,
    sawHeader: s.tar.sawHeader,
    ...(finishError === undefined ? {} : { finishError }),
  });
}

port.on('message', (msg: ToWorker) => {
  switch (msg.t) {
    case 'open':
      open(msg);
      break;
    case 'slot':
      slots.set(msg.slot, Buffer.from(msg.sab));
      break;
    case 'forget':
      slots.delete(msg.slot);
      break;
    case 'data':
      data(msg);
      break;
    case 'end':
      void end(msg.id);
      break;
    case 'close': {
      const s = streams.get(msg.id);
      streams.delete(msg.id);
      if (s) {
        s.done = true;
        s.gunzip.destroy();
      }
      break;
    }
  }
});
