/**
 * A scavenge (young-generation collection) every so many bytes of short-lived ArrayBuffers: what keeps
 * an isolate that streams data at hundreds of MB/s out of back-to-back full collections.
 *
 * Why (bench/README.md, Uploads, with the V8 source): V8 counts external memory allocated since the
 * last mark-compact against the old generation's allocation limit. After a mark-compact during an
 * upload the limit is set only ~8–12 MB above the heap (the mutator allocates fast, so the growing
 * factor is small), but an upload allocates an ArrayBuffer for every socket read (node's HTTP parser
 * copies each piece of a body), and V8 only scavenges them away every 32 MB of young ArrayBuffers. So
 * the external memory since the last mark-compact passes the limit long before the next scavenge,
 * incremental marking starts, another mark-compact runs and sets the same low limit: a mark-compact of
 * the whole heap every 50–80 ms for as long as the upload lasts (3–4x the collector's CPU, a third less
 * throughput). A scavenge every few MiB keeps the dead buffers, and so the external memory since the
 * last mark-compact, under that margin; each costs well under a millisecond, since almost nothing in
 * the young generation is alive.
 *
 * `--no-concurrent-array-buffer-sweeping` (bin/bugzot.js) makes the scavenge free the dead buffers at
 * once rather than in a background task, which this relies on.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collect = (opts: { type: 'minor' }) => void;
let collect: Collect | undefined;

/** V8's `gc`, exposed at run time (a context made after `--expose-gc` is set has it). */
function collector(): Collect {
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as Collect;
  }
  return collect;
}

/**
 * Returns a counter: call it with the bytes of each buffer allocated; every `everyBytes` it runs a
 * scavenge of this isolate. One per isolate, shared by everything that streams through it.
 */
export function scavengeEvery(everyBytes: number): (bytes: number) => void {
  const gc = collector();
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < everyBytes) return;
    since = 0;
    gc({ type: 'minor' });
  };
}
