// bugzot-test: once
/**
 * Bundle inspection bounds (decompression bombs), without a server: the inspector and the hash fed
 * directly, as the upload path feeds them. The HTTP side (422 through curl
 * and tus, nothing kept) is in the attachment suite.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { inflatePool } from '../src/attachments/inflate-pool.ts';
import { IngestState } from '../src/attachments/ingest.ts';
import { DEFAULT_INSPECT_LIMITS, hashingOnThreadNow } from '../src/attachments/inspect.ts';
import { loadConfig } from '../src/config.ts';
import type { AppError } from '../src/platform/errors.ts';
import { tarHeader, zeroBundle } from './helpers/attachments.ts';

const MiB = 1024 * 1024;
const ALL = new Set(['bundle', 'gzip', 'text', 'binary']);

/** Feeds `data` in 1 MiB batches as streamInto does; resolves with the result or the refusal. */
async function ingest(data: Buffer, limits: { maxInflatedBytes: number; maxRatio: number }) {
  const state = new IngestState('diag.tgz', ALL, limits);
  try {
    for (let at = 0; at < data.length; at += MiB) {
      const batch = data.subarray(at, at + MiB);
      await state.write(batch);
    }
    return await state.finish();
  } finally {
    state.dispose();
  }
}

/** A .tgz of one member of `size` random bytes (does not compress: inflated ≈ compressed). */
function randomBundle(size: number): Buffer {
  const pad = (512 - (size % 512)) % 512;
  return gzipSync(
    Buffer.concat([tarHeader('random.bin', size), randomBytes(size), Buffer.alloc(pad + 1024)]),
    {
      level: 1,
    },
  );
}

test('BUNDLE_INSPECT_MAX_BYTES: a bundle inflating past it is refused; one under it is listed', async () => {
  const bundle = randomBundle(6 * MiB);
  await assert.rejects(ingest(bundle, { maxInflatedBytes: 4 * MiB, maxRatio: 200 }), (err: AppError) => {
    assert.equal(err.status, 422);
    assert.equal(err.code, 'bundle_too_expanded');
    assert.match(err.message, /BUNDLE_INSPECT_MAX_BYTES/);
    return true;
  });
  const ok = await ingest(bundle, { maxInflatedBytes: 8 * MiB, maxRatio: 200 });
  assert.equal(ok.inspection.kind, 'bundle');
  assert.deepEqual(
    ok.inspection.members.map((m) => [m.path, m.size]),
    [['random.bin', 6 * MiB]],
  );
  assert.equal(ok.sha256, createHash('sha256').update(bundle).digest('hex'));
});

test('BUNDLE_INSPECT_MAX_RATIO: a 1 GiB-of-zeros bomb stops near the 64 MiB grace, in little CPU', async () => {
  const bomb = zeroBundle(1024 * MiB);
  assert.ok(bomb.length < 1.1 * MiB, `bomb is ${bomb.length} bytes`);
  const cpu = process.cpuUsage();
  await assert.rejects(
    ingest(bomb, { maxInflatedBytes: 256 * 1024 * MiB, maxRatio: 200 }),
    (err: AppError) => {
      assert.equal(err.code, 'bundle_too_expanded');
      assert.match(err.message, /BUNDLE_INSPECT_MAX_RATIO/);
      return true;
    },
  );
  const used = process.cpuUsage(cpu);
  // Inflating all 1 GiB takes ~1 s of CPU here; stopping after ~64 MiB takes a small fraction of that.
  assert.ok((used.user + used.system) / 1000 < 600, `used ${(used.user + used.system) / 1000} ms of CPU`);
  // With a ratio high enough, the same file is an ordinary bundle of one member.
  const ok = await ingest(bomb, { maxInflatedBytes: 256 * 1024 * MiB, maxRatio: 2000 });
  assert.equal(ok.inspection.members[0]?.size, 1024 * MiB);
});

test('a dead inflater thread fails the upload with a 5xx, and the next bundle gets a new thread', async () => {
  const bundle = randomBundle(8 * MiB);
  const state = new IngestState('diag.tgz', ALL, DEFAULT_INSPECT_LIMITS);
  try {
    for (let at = 0; at < 4 * MiB; at += MiB) await state.write(bundle.subarray(at, at + MiB));
    await inflatePool.terminate();
    await assert.rejects(
      (async () => {
        for (let at = 4 * MiB; at < bundle.length; at += MiB)
          await state.write(bundle.subarray(at, at + MiB));
        return await state.finish();
      })(),
      (err: AppError) => {
        assert.equal(err.status, 503);
        assert.equal(err.code, 'inspection_failed');
        assert.match(err.message, /diag\.tgz could not be checked/);
        return true;
      },
    );
  } finally {
    state.dispose();
  }
  const ok = await ingest(bundle, DEFAULT_INSPECT_LIMITS);
  assert.deepEqual(
    ok.inspection.members.map((m) => [m.path, m.size]),
    [['random.bin', 8 * MiB]],
  );
});

test('concurrent bundles share the inflater slots without mixing bytes, and every slot comes back', async () => {
  // Six bundles at once, each a member of its own name and size; two of them damaged half-way.
  const sizes = [3, 5, 7, 4, 6, 2].map((n) => n * MiB + 1234);
  const bundles = sizes.map((size, i) => {
    const pad = (512 - (size % 512)) % 512;
    // Random bytes do not compress: the slots fill and turn over many times, and a byte out of place
    // would fail gzip's CRC.
    const body = randomBytes(size);
    return gzipSync(Buffer.concat([tarHeader(`log-${i}.txt`, size), body, Buffer.alloc(pad + 1024)]), {
      level: 1,
    });
  });
  const damaged = new Set([1, 4]);
  // And, at the same time, a bomb and a gzip that holds no tar, both stopped early.
  const others = [
    { name: 'bomb.tgz', data: zeroBundle(512 * MiB), code: 'bundle_too_expanded' },
    { name: 'plain.tgz', data: gzipSync(randomBytes(6 * MiB), { level: 0 }), code: 'not_a_bundle' },
  ];
  const feed = async (i: number, name = `diag-${i}.tgz`, given?: Buffer) => {
    let data = given ?? bundles[i]!;
    if (damaged.has(i)) {
      data = Buffer.from(data);
      randomBytes(512).copy(data, Math.floor(data.length / 2));
    }
    // Small pieces, as a socket delivers them.
    const state = new IngestState(name, ALL, DEFAULT_INSPECT_LIMITS);
    try {
      for (let at = 0; at < data.length; at += 64 * 1024) {
        await state.write(data.subarray(at, at + 64 * 1024));
        if (at % (256 * 1024) === 0) await new Promise((r) => setImmediate(r));
      }
      return await state.finish();
    } finally {
      state.dispose();
    }
  };
  const madeBefore = inflatePool.slotCounts().made;
  const stopped = Promise.allSettled(others.map((o) => feed(-1, o.name, o.data)));
  const results = await Promise.allSettled(bundles.map((_, i) => feed(i)));
  for (const [i, outcome] of (await stopped).entries()) {
    assert.equal(outcome.status, 'rejected', others[i]!.name);
    assert.equal((outcome as PromiseRejectedResult).reason.code, others[i]!.code);
  }
  results.forEach((r, i) => {
    if (damaged.has(i)) {
      assert.equal(r.status, 'rejected', `bundle ${i} was damaged`);
      assert.match((r as PromiseRejectedResult).reason.code, /^corrupt_(gzip|bundle)$/);
    } else {
      assert.equal(r.status, 'fulfilled', `bundle ${i}: ${(r as PromiseRejectedResult).reason}`);
      const { inspection } = (r as PromiseFulfilledResult<Awaited<ReturnType<typeof feed>>>).value;
      assert.deepEqual(
        inspection.members.map((m) => [m.path, m.size]),
        [[`log-${i}.txt`, sizes[i]]],
      );
    }
  });
  // Acknowledgements of a refused stream's last batches may still be on their way.
  for (let i = 0; i < 100 && inflatePool.slotCounts().lent > 0; i++)
    await new Promise((r) => setTimeout(r, 10));
  const counts = inflatePool.slotCounts();
  assert.equal(counts.lent, 0, 'every slot lent to the thread came back');
  assert.ok(counts.free > 0 && counts.free <= 8, `${counts.free} free slots kept`);
  // Eight streams use at most three slots each at a time (one gathering, two in flight); slots that
  // come back while streams are open are kept, not dropped and made again.
  assert.ok(counts.made - madeBefore <= 8 * 3, `${counts.made - madeBefore} slots made for 8 streams`);
});

test('slots that come back while uploads are open are kept for them, not dropped and made again', async () => {
  // Sixteen bundles fed in lockstep, 1 MiB at a time: up to three slots each in use at once, many
  // more than the eight kept free when nothing is open.
  const bundles = Array.from({ length: 16 }, (_, i) => randomBundle(6 * MiB + i * 512));
  const madeBefore = inflatePool.slotCounts().made;
  const states = bundles.map((_, i) => new IngestState(`many-${i}.tgz`, ALL, DEFAULT_INSPECT_LIMITS));
  try {
    for (let at = 0; at < Math.max(...bundles.map((b) => b.length)); at += MiB)
      await Promise.all(
        states.map((st, i) =>
          at < bundles[i]!.length ? st.write(bundles[i]!.subarray(at, at + MiB)) : undefined,
        ),
      );
    const results = await Promise.all(states.map((st) => st.finish()));
    for (const [i, r] of results.entries())
      assert.equal(r.sha256, createHash('sha256').update(bundles[i]!).digest('hex'));
  } finally {
    for (const st of states) st.dispose();
  }
  const counts = inflatePool.slotCounts();
  assert.ok(counts.made - madeBefore <= 16 * 3, `${counts.made - madeBefore} slots made for 16 streams`);
  assert.equal(counts.lent, 0);
  assert.ok(counts.free <= 8, `${counts.free} free slots kept once none is open`);
});

test('a bundle has the same SHA-256 hashed on the inflater thread or on the main thread, to its last byte', async () => {
  // Five bundles open at once: the first four are hashed on the thread, the fifth here. Then two of the
  // four pause (a tus upload between chunks) and a sixth takes a place on the thread. Each ends its
  // tar archive well before its last byte (a record's padding of zeros, then gzip's trailer), where
  // the thread stops inflating but must go on hashing.
  const bundles = [1, 2, 3, 2, 1, 2].map((n, i) => {
    const size = n * MiB + 77 * i;
    const pad = (512 - (size % 512)) % 512;
    return gzipSync(
      Buffer.concat([
        tarHeader(`part-${i}.log`, size),
        randomBytes(size),
        Buffer.alloc(pad + 1024 + 64 * 1024),
      ]),
      { level: 1 },
    );
  });
  const states = bundles.map((_, i) => new IngestState(`diag-${i}.tgz`, ALL, DEFAULT_INSPECT_LIMITS));
  try {
    for (const [i, state] of states.slice(0, 5).entries())
      await state.write(bundles[i]!.subarray(0, 64 * 1024));
    assert.deepEqual(
      states.slice(0, 5).map((s) => s.inspector.hashesOnThread),
      [true, true, true, true, false],
    );
    assert.equal(hashingOnThreadNow(), 4);
    states[0]!.pause();
    states[1]!.pause();
    assert.equal(hashingOnThreadNow(), 2, 'paused uploads hold no place');
    await states[5]!.write(bundles[5]!.subarray(0, 64 * 1024));
    assert.equal(states[5]!.inspector.hashesOnThread, true);
    assert.equal(hashingOnThreadNow(), 3);
    // The rest interleaved, in pieces as a socket delivers them.
    for (let at = 64 * 1024; at < Math.max(...bundles.map((b) => b.length)); at += 64 * 1024)
      for (const [i, state] of states.entries())
        if (at < bundles[i]!.length) await state.write(bundles[i]!.subarray(at, at + 64 * 1024));
    const results = await Promise.all(states.map((s) => s.finish()));
    results.forEach((r, i) => {
      assert.equal(r.sha256, createHash('sha256').update(bundles[i]!).digest('hex'), `bundle ${i}`);
      assert.equal(r.inspection.kind, 'bundle');
      assert.equal(r.inspection.members[0]?.path, `part-${i}.log`);
    });
  } finally {
    for (const s of states) s.dispose();
  }
  assert.equal(hashingOnThreadNow(), 0, 'finished streams no longer count');
  // Short files: a gzip cut before its decision (under 12 bytes, decided at the end; refused,
  // whoever hashes it), a short gzip of no data, a text file and an empty one.
  for (const [name, data, expected] of [
    ['cut.gz', gzipSync(Buffer.alloc(0)).subarray(0, 10), 'corrupt_gzip'],
    ['nothing.gz', gzipSync(Buffer.alloc(0)), 'gzip'],
    ['notes.txt', Buffer.from('line one\nline two\n'), 'text'],
    ['empty.log', Buffer.alloc(0), 'text'],
  ] as const) {
    const state = new IngestState(name, ALL, DEFAULT_INSPECT_LIMITS);
    try {
      if (data.length) await state.write(data);
      const r = await state.finish().catch((err: AppError) => err);
      if ('sha256' in r) {
        assert.equal(r.inspection.kind, expected, name);
        assert.equal(r.sha256, createHash('sha256').update(data).digest('hex'), name);
      } else assert.equal(r.code, expected, `${name}: ${r.message}`);
    } finally {
      state.dispose();
    }
  }
});

test('the bounds are configuration: defaults, values, and a bad value naming the variable', () => {
  const base = {};
  const defaults = loadConfig({ ...base });
  assert.equal(defaults.bundleInspectMaxBytes, 256 * 1024 ** 3);
  assert.equal(defaults.bundleInspectMaxRatio, 200);
  const set = loadConfig({ ...base, BUNDLE_INSPECT_MAX_BYTES: '1073741824', BUNDLE_INSPECT_MAX_RATIO: '50' });
  assert.equal(set.bundleInspectMaxBytes, 1024 ** 3);
  assert.equal(set.bundleInspectMaxRatio, 50);
  assert.throws(() => loadConfig({ ...base, BUNDLE_INSPECT_MAX_RATIO: '0' }), /BUNDLE_INSPECT_MAX_RATIO/);
  assert.throws(() => loadConfig({ ...base, BUNDLE_INSPECT_MAX_BYTES: 'lots' }), /BUNDLE_INSPECT_MAX_BYTES/);
});
