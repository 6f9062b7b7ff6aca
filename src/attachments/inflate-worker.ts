/**
 * The thread that inflates diagnostic bundles and reads their tar headers (see inflate-pool.ts). Its
 * isolate holds next to nothing, so the inflater's output buffers (about 1 GiB of short-lived
 * ArrayBuffers per GiB received) are collected here at little cost, instead of making the main
 * isolate run full collections of the app's heap. One thread serves every upload of the process; each
 * stream is known by the id the main thread gave it. It reports facts (ended, damaged, not tar, over the
 * inflation limits, the member list); the main thread turns them into refusals.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { createGunzip, type Gunzip, type ZlibOptions } from 'node:zlib';
import type { FromWorker, ToWorker } from './inflate-pool.ts';
import { NotTar, TarReader } from './tar.ts';

const port = parentPort!;

/**
 * The inflater's output buffers are freed only by a collection, and this isolate allocates next to no
 * JS objects, so V8 would collect only when their external memory reached its limit (~30 MB of dead
 * buffers held at any time, resident memory the process does not need). A scavenge of this tiny young
 * generation every SCAVENGE_BYTES of output costs a few microseconds and keeps that under ~10 MB.
 */
const SCAVENGE_BYTES = 4 * 1024 * 1024;
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as (opts: { type: 'minor' }) => void;
let sinceScavenge = 0;

interface Stream {
  gunzip: Gunzip;
  tar: TarReader;
  /** Stopped inflating: the archive ended, or the main thread was told why not. */
  done: boolean;
  inflated: number;
  compressedIn: number;
  maxInflatedBytes: number;
  maxRatio: number;
  graceBytes: number;
}

const streams = new Map<number, Stream>();
const send = (msg: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(msg, transfer ?? []);

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
    tar: new TarReader(msg.maxListed),
    done: false,
    inflated: 0,
    compressedIn: 0,
    maxInflatedBytes: msg.maxInflatedBytes,
    maxRatio: msg.maxRatio,
    graceBytes: msg.graceBytes,
  };
  streams.set(id, s);
  gunzip.on('data', (out: Buffer) => {
    if (s.done) return;
    s.inflated += out.length;
    sinceScavenge += out.length;
    if (sinceScavenge >= SCAVENGE_BYTES) {
      sinceScavenge = 0;
      collect({ type: 'minor' });
    }
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
  });
}

function data(msg: Extract<ToWorker, { t: 'data' }>): void {
  const { id, buf } = msg;
  const s = streams.get(id);
  if (s) s.compressedIn = msg.compressedIn;
  if (!s || s.done) {
    send({ t: 'ack', id, buf }, [buf]);
    return;
  }
  // The buffer goes back to the main thread's pool once zlib has read it (not on an error: the
  // thread pool may still be reading it).
  s.gunzip.write(Buffer.from(buf, 0, msg.length), (err) => {
    if (err) send({ t: 'ack', id });
    else send({ t: 'ack', id, buf }, [buf]);
  });
}

async function end(id: number): Promise<void> {
  const s = streams.get(id);
  if (!s) {
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
