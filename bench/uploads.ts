/**
 * Upload benchmark: a large .tgz (default 4 GiB, BENCH_UPLOAD_MIB to change) sent to `bugzot serve`
 * (its own process, on PostgreSQL, local storage) through the single-request path and through tus in
 * 64 MiB chunks, beside a raw node:http server that only pipes the body to a file, in the same run.
 * Prints MB/s, the ratio to the raw baseline and the server's peak RSS; then 20 concurrent 256 MiB
 * uploads (BENCH_CONCURRENT_MIB) and the peak RSS meanwhile.
 *
 * They run back to back in BENCH_ROUNDS rounds (default 3) of raw, single request, raw, tus, raw. Each
 * ratio is taken against the mean MB/s of the raw runs just before and just after it, and the median
 * ratio is printed: on a shared 2-core VM the disk and the CPU's steal time change from one minute to
 * the next, and one raw run alone has varied 187–595 MB/s.
 * The CPU each thread of the server used is printed too (main = the event loop).
 *
 *   node --import tsx bench/uploads.ts
 *
 * The server runs the production build: the bench runs `npm run build` first (BENCH_FROM_SOURCE=1 runs
 * the sources through tsx instead). BENCH_NODE_ARGS passes flags to the server's node (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`). CPU s/GiB is the server process's CPU time (all threads); "after body"
 * is the ms from the last byte sent to the answer (summed over the PATCHes for tus).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import {
  createReadStream,
  createWriteStream,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { openPostgres } from '../src/platform/db.ts';
import { migrate } from '../src/platform/migrate.ts';
import { createApiKey, createUser, toViewer } from '../src/users/index.ts';
import { benchDatabase, freePort, startServer } from './lib.ts';

const MiB = 1024 * 1024;
const bigBytes = Number(process.env['BENCH_UPLOAD_MIB'] ?? 4096) * MiB;
const concurrentBytes = Number(process.env['BENCH_CONCURRENT_MIB'] ?? 256) * MiB;
const CONCURRENT = 20;
const CHUNK = 64 * MiB;
/** Rounds of raw, single request, raw, tus, raw (BENCH_ROUNDS): the ratios are their medians. */
const ROUNDS = Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? 3));
const dir = mkdtempSync(join(tmpdir(), 'bugzot-bench-uploads-'));

/** Writes a gzip-compressed tar of about `bytes` (one member of random data; gzip stores it). */
async function makeTgz(path: string, bytes: number): Promise<void> {
  const member = bytes - 3 * 512;
  const header = Buffer.alloc(512);
  header.write('diag/data.bin', 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${member.toString(8).padStart(11, '0')}\0`, 124);
  header.write(
    `${Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
    136,
  );
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\u000000', 257);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  async function* tar() {
    yield header;
    const block = Buffer.allocUnsafe(4 * MiB);
    let left = member;
    while (left > 0) {
      const n = Math.min(left, block.length);
      randomFillSync(block, 0, n);
      yield Buffer.from(block.subarray(0, n));
      left -= n;
    }
    yield Buffer.alloc((512 - (member % 512)) % 512);
    yield Buffer.alloc(1024);
  }
  await pipeline(tar(), createGzip({ level: 0 }), createWriteStream(path));
}

/** Samples a process's resident memory every 50 ms; `peak()` is the highest since the last `reset()`. */
function rssSampler(pid: number) {
  let max = 0;
  const read = () => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) max = Math.max(max, Number(m[1]) * 1024);
    } catch {
      // gone
    }
  };
  const timer = setInterval(read, 50);
  return {
    reset() {
      max = 0;
      read();
    },
    peak: () => max,
    stop: () => clearInterval(timer),
  };
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, fields 14 and 15 of the line, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds per thread of a process: the main thread as `main`, the others by thread id (node leaves
 * its threads unnamed: the libuv pool, the inflater thread and V8's helpers all read `node`).
 */
function threadCpu(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cpu = (Number(fields[11]) + Number(fields[12])) / 100;
      byName.set(tid === String(pid) ? 'main' : `thread ${tid}`, cpu);
    }
  } catch {
    // gone
  }
  return byName;
}

/** `name s/GiB` for each thread name that used CPU between two `threadCpu` readings. */
function threadBreakdown(before: Map<string, number>, after: Map<string, number>, gib: number): string {
  return [...after]
    .map(([name, cpu]) => [name, (cpu - (before.get(name) ?? 0)) / gib] as const)
    .filter(([, perGib]) => perGib >= 0.01)
    .sort((a, b) => b[1] - a[1])
    .map(([name, perGib]) => `${name} ${perGib.toFixed(2)}`)
    .join(', ');
}

/**
 * Sends `path` (or bytes start..end of it) as a request body; resolves with status and answer, and
 * `tailMs`: from the last byte handed to the socket to the end of the answer (the server's work after
 * the body: its final flush, its database writes).
 */
function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  path: string,
  range?: { start: number; end: number },
): Promise<{
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  tailMs: number;
}> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    const req = request(url, { method, headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          headers: res.headers,
          tailMs: sent ? performance.now() - sent : 0,
        }),
      );
    });
    req.on('finish', () => {
      sent = performance.now();
    });
    req.on('error', reject);
    createReadStream(path, { highWaterMark: MiB, ...(range ?? {}) })
      .on('error', reject)
      .pipe(req);
  });
}

async function startRawUploadBaseline(): Promise<{
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}> {
  const port = await freePort();
  const target = JSON.stringify(join(dir, 'raw-upload'));
  const code = `
    const fs = require('node:fs');
    const { pipeline } = require('node:stream');
    require('node:http').createServer((req, res) => {
      pipeline(req, fs.createWriteStream(${target}), (err) => {
        res.writeHead(err ? 500 : 201, { 'content-type': 'text/plain' });
        res.end(err ? 'failed' : 'stored');
      });
    }).listen(${port}, '127.0.0.1', () => process.stdout.write('ready\\n'));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout!, 'data');
  return {
    url: `http://127.0.0.1:${port}/upload`,
    child,
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'close');
    },
  };
}

const mbps = (bytes: number, ms: number) => bytes / MiB / (ms / 1000);
const mb = (bytes: number) => `${(bytes / MiB).toFixed(0)} MB`;

const db = await benchDatabase();
const stops: (() => Promise<void>)[] = [db.stop, async () => rmSync(dir, { recursive: true, force: true })];
try {
  const conn = await openPostgres(db.url, 2);
  await migrate(conn);
  const admin = await createUser(conn, {
    email: 'bench@example.com',
    name: 'Bench',
    password: 'correct horse battery',
    kind: 'internal',
    isAdmin: true,
  });
  const { key } = await createApiKey(conn, toViewer(admin), {
    name: 'bench',
    scope: 'read-write',
    expiresAt: null,
  });
  await conn.close();
  const auth = { authorization: `Bearer ${key}` };

  process.stderr.write(`writing a ${mb(bigBytes)} .tgz and a ${mb(concurrentBytes)} one...\n`);
  const big = join(dir, 'big.tgz');
  const small = join(dir, 'small.tgz');
  await makeTgz(big, bigBytes);
  await makeTgz(small, concurrentBytes);
  const size = statSync(big).size;
  const smallSize = statSync(small).size;

  const fromSource = process.env['BENCH_FROM_SOURCE'] === '1';
  if (!fromSource) {
    execFileSync(
      process.execPath,
      ['--import', 'tsx', new URL('../scripts/build.ts', import.meta.url).pathname],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
  }
  const server = await startServer(
    // One process, like the raw baseline (and so that the RSS sampled is the one receiving the bytes:
    // with WORKERS > 1 the uploads land in cluster workers and the sampled pid is the primary's).
    {
      DATABASE_URL: db.url,
      DATA_DIR: join(dir, 'data'),
      ATTACHMENT_MAX_BYTES: String(16 * 1024 * MiB),
      WORKERS: '1',
      ...(fromSource ? { BUGZOT_FROM_SOURCE: '1' } : {}),
    },
    [],
    (process.env['BENCH_NODE_ARGS'] ?? '').split(' ').filter(Boolean),
  );
  stops.unshift(server.stop);
  const json = async (path: string, body: object) => {
    const res = await fetch(`${server.url}/api/v1${path}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return (await res.json()) as { id: number };
  };
  const product = await json('/products', { name: 'Bench', is_released: true });
  const version = await json(`/products/${product.id}/versions`, { name: '1.0', is_released: true });
  const component = await json(`/products/${product.id}/components`, { name: 'Core' });
  const bug = await json('/bugs', {
    product_id: product.id,
    version_id: version.id,
    component_id: component.id,
    summary: 'Benchmark uploads',
  });
  const remove = (id: number) =>
    fetch(`${server.url}/api/v1/attachments/${id}`, { method: 'DELETE', headers: auth }).then(
      (r) => r.status,
    );

  const idle = rssSampler(server.child.pid!);
  await new Promise((r) => setTimeout(r, 300));
  const idleRss = idle.peak();
  idle.stop();
  const raw = await startRawUploadBaseline();
  stops.unshift(raw.stop);
  const rawRss = rssSampler(raw.child.pid!);
  const appRss = rssSampler(server.child.pid!);
  stops.unshift(async () => {
    rawRss.stop();
    appRss.stop();
  });

  const gib = size / (1024 * MiB);
  /** `tail`: ms after the last byte was sent, to the answer (summed over tus's PATCHes). */
  type Figures = { ms: number; rss: number; cpu: number; tail: number };
  /** One upload to the raw baseline. */
  const rawRun = async (threads: string[], label: string): Promise<Figures> => {
    rawRss.reset();
    const threads0 = threadCpu(raw.child.pid!);
    const cpu0 = cpuSeconds(raw.child.pid!);
    const t0 = performance.now();
    const r0 = await send(raw.url, 'PUT', { 'content-length': String(size) }, big);
    const ms = performance.now() - t0;
    const cpu = cpuSeconds(raw.child.pid!) - cpu0;
    threads.push(`${label}: ${threadBreakdown(threads0, threadCpu(raw.child.pid!), gib)}`);
    if (r0.status !== 201) throw new Error(`baseline: ${r0.status}`);
    rmSync(join(dir, 'raw-upload'), { force: true });
    return { ms, rss: rawRss.peak(), cpu, tail: r0.tailMs };
  };
  /**
   * One round: raw, single request, raw, tus, raw, back to back. Each Bugzot run is compared with the
   * raw runs just before and just after it (the mean of their MB/s), so that a change in the machine's
   * speed during the round weighs on both sides alike.
   */
  const round = async () => {
    const threads: string[] = [];
    const rawBefore = await rawRun(threads, 'raw, before');

    // Single request.
    appRss.reset();
    const appPid = server.child.pid!;
    let threads0 = threadCpu(appPid);
    let cpu0 = cpuSeconds(appPid);
    let t0 = performance.now();
    const r1 = await send(
      `${server.url}/api/v1/bugs/${bug.id}/attachments/big.tgz`,
      'PUT',
      { ...auth, 'content-length': String(size) },
      big,
    );
    const singleMs = performance.now() - t0;
    const singleRss = appRss.peak();
    const singleCpu = cpuSeconds(appPid) - cpu0;
    threads.push(`single: ${threadBreakdown(threads0, threadCpu(appPid), gib)}`);
    if (r1.status !== 201) throw new Error(`single request: ${r1.status} ${r1.body}`);
    await remove((JSON.parse(r1.body) as { id: number }).id);

    const rawBetween = await rawRun(threads, 'raw, between');

    // tus, 64 MiB chunks.
    appRss.reset();
    threads0 = threadCpu(appPid);
    cpu0 = cpuSeconds(appPid);
    t0 = performance.now();
    const meta = `filename ${Buffer.from('big.tgz').toString('base64')},bug_id ${Buffer.from(String(bug.id)).toString('base64')}`;
    const created = await fetch(`${server.url}/api/v1/uploads`, {
      method: 'POST',
      headers: { ...auth, 'tus-resumable': '1.0.0', 'upload-length': String(size), 'upload-metadata': meta },
    });
    if (created.status !== 201) throw new Error(`tus create: ${created.status}`);
    const uploadUrl = `${server.url}${created.headers.get('location')}`;
    let attachmentId = 0;
    let tusTail = 0;
    for (let offset = 0; offset < size; offset += CHUNK) {
      const end = Math.min(size, offset + CHUNK) - 1;
      const res = await send(
        uploadUrl,
        'PATCH',
        {
          ...auth,
          'tus-resumable': '1.0.0',
          'content-type': 'application/offset+octet-stream',
          'upload-offset': String(offset),
          'content-length': String(end - offset + 1),
        },
        big,
        { start: offset, end },
      );
      if (res.status !== 204) throw new Error(`tus PATCH at ${offset}: ${res.status} ${res.body}`);
      if (process.env['BENCH_VERBOSE'])
        process.stderr.write(`PATCH ${offset / MiB} MiB: ${(performance.now() - t0).toFixed(0)} ms\n`);
      attachmentId = Number(res.headers['bugzot-attachment-id'] ?? 0);
      tusTail += res.tailMs;
    }
    const tusMs = performance.now() - t0;
    const tusRss = appRss.peak();
    const tusCpu = cpuSeconds(appPid) - cpu0;
    threads.push(`tus: ${threadBreakdown(threads0, threadCpu(appPid), gib)}`);
    await remove(attachmentId);
    const rawAfter = await rawRun(threads, 'raw, after');
    return {
      raws: [rawBefore, rawBetween, rawAfter],
      single: { ms: singleMs, rss: singleRss, cpu: singleCpu, tail: r1.tailMs },
      tus: { ms: tusMs, rss: tusRss, cpu: tusCpu, tail: tusTail },
      threads,
    };
  };
  const rounds: Awaited<ReturnType<typeof round>>[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    rounds.push(await round());
    process.stderr.write(`round ${i + 1} of ${ROUNDS} done\n`);
  }

  // 20 concurrent uploads.
  appRss.reset();
  const t0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: CONCURRENT }, (_, i) =>
      send(
        `${server.url}/api/v1/bugs/${bug.id}/attachments/c${i}.tgz`,
        'PUT',
        { ...auth, 'content-length': String(smallSize) },
        small,
      ),
    ),
  );
  const concurrentMs = performance.now() - t0;
  const concurrentRss = appRss.peak();
  const failed = results.filter((r) => r.status !== 201);
  if (failed.length) throw new Error(`${failed.length} concurrent uploads failed: ${failed[0]!.body}`);

  /** MB/s of the raw baseline around a Bugzot run: the mean of the runs before and after it. */
  const around = (a: Figures, b: Figures) => (mbps(size, a.ms) + mbps(size, b.ms)) / 2;
  const row = (name: string, f: Figures, base?: number) =>
    `| ${name.padEnd(44)} | ${mbps(size, f.ms).toFixed(0).padStart(6)} | ${(base ? (mbps(size, f.ms) / base).toFixed(2) : '').padStart(5)} | ${mb(f.rss).padStart(8)} | ${(f.cpu / gib).toFixed(2).padStart(9)} | ${f.tail.toFixed(0).padStart(10)} |`;
  const median = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  const baseline = (r: (typeof rounds)[number], path: 'single' | 'tus') =>
    path === 'single' ? around(r.raws[0]!, r.raws[1]!) : around(r.raws[1]!, r.raws[2]!);
  const ratios = (path: 'single' | 'tus') => rounds.map((r) => mbps(size, r[path].ms) / baseline(r, path));
  const peak = (path: 'single' | 'tus') => Math.max(...rounds.map((r) => r[path].rss));
  const rawPeak = Math.max(...rounds.flatMap((r) => r.raws.map((f) => f.rss)));
  const out = [
    `upload of a ${mb(size)} .tgz, node ${process.version}, server (${fromSource ? 'sources through tsx' : 'dist/ build'}) on PostgreSQL with local storage ` +
      `(server RSS when idle: ${mb(idleRss)}); ${ROUNDS} round(s), each ratio against the mean MB/s of the raw runs just before and after it`,
    '',
    '| round | path                                         |   MB/s | ratio | peak RSS | CPU s/GiB | after body |',
    '| ----: | -------------------------------------------- | -----: | ----: | -------: | --------: | ---------: |',
    ...rounds.flatMap((r, i) =>
      [
        row('raw node:http, body piped to a file', r.raws[0]!),
        row('bugzot single request (PUT, one pass)', r.single, baseline(r, 'single')),
        row('raw node:http, body piped to a file', r.raws[1]!),
        row('bugzot tus, 64 MiB chunks', r.tus, baseline(r, 'tus')),
        row('raw node:http, body piped to a file', r.raws[2]!),
      ].map((line) => `| ${String(i + 1).padStart(5)} ${line}`),
    ),
    '',
    `median ratio: single request ${median(ratios('single')).toFixed(2)} (${ratios('single')
      .map((x) => x.toFixed(2))
      .join(', ')}), tus ${median(ratios('tus')).toFixed(2)} (${ratios('tus')
      .map((x) => x.toFixed(2))
      .join(', ')}); target 0.80`,
    `peak RSS over the rounds: raw ${mb(rawPeak)}, single request ${mb(peak('single'))}, tus ${mb(peak('tus'))}; target under 200 MB`,
    `${CONCURRENT} concurrent ${mb(smallSize)} uploads: ${(mbps(smallSize * CONCURRENT, concurrentMs)).toFixed(0)} MB/s in total, ` +
      `${(concurrentMs / 1000).toFixed(1)} s, server peak RSS ${mb(concurrentRss)}; target under 400 MB`,
    '',
    'CPU s/GiB by thread (main = the event loop; the others are the libuv pool, the inflater thread, V8 helpers):',
    ...rounds.flatMap((r, i) => r.threads.map((t) => `- round ${i + 1}, ${t}`)),
  ];
  console.log(out.join('\n'));
} finally {
  for (const stop of stops) await stop().catch((err) => console.error(err));
}
