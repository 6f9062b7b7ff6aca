// bugzot-test: once
/**
 * The scavenge counter of platform/young-gc.ts: it runs real young-generation collections of this
 * isolate, one per `everyBytes` counted, and none before.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { constants, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';
import { scavengeEvery } from '../src/platform/young-gc.ts';

/** Minor collections of this isolate observed while `run` runs. */
async function minorCollections(run: () => void): Promise<number> {
  const seen: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => seen.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  run();
  // GC entries are delivered asynchronously.
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  return seen.filter(
    (e) =>
      (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ===
      constants.NODE_PERFORMANCE_GC_MINOR,
  ).length;
}

test('scavengeEvery runs one young-generation collection per `everyBytes` counted', async () => {
  const MiB = 1024 * 1024;
  const count = scavengeEvery(4 * MiB);
  // 64 KiB pieces, as socket reads come: 3.9 MiB is not enough for one (V8 may run one of its own)...
  const under = await minorCollections(() => {
    for (let i = 0; i < 62; i++) count(64 * 1024);
  });
  // ...and 40 MiB more makes ten (V8 may add collections of its own, never fewer).
  const over = await minorCollections(() => {
    for (let i = 0; i < 640; i++) count(64 * 1024);
  });
  assert.ok(under <= 2, `${under} minor collections for 3.9 MiB counted`);
  assert.ok(over >= 10, `${over} minor collections for 40 MiB counted`);
});
