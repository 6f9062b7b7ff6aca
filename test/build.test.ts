// bugzot-test: once
/**
 * The production build (`npm run build`, scripts/build.ts) and how `bin/bugzot.js` picks what to run:
 * the bundle in dist/ only while every source it was built from is unchanged, the sources through tsx
 * otherwise. Run in copies of the tree, so that the working tree's own dist/ is never touched.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { tarHeader } from './helpers/attachments.ts';
import { runNode } from './helpers/run.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'bugzot-build-'));
  dirs.push(d);
  return d;
}

function run(args: string[], opts: { cwd: string; env?: Record<string, string> }) {
  return runNode(args, { ...opts, omitEnv: ['BUGZOT_FROM_SOURCE'] });
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

test('bin/bugzot.js runs dist/ while its sources are unchanged, and the sources through tsx otherwise', async () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'src'));
  mkdirSync(join(dir, 'dist'));
  cpSync(join(ROOT, 'bin', 'bugzot.js'), join(dir, 'bin', 'bugzot.js'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(join(dir, 'src', 'main.ts'), "const where: string = 'sources';\nconsole.log(where);\n");
  writeFileSync(join(dir, 'dist', 'main.js'), "console.log('dist');\n");
  writeFileSync(
    join(dir, 'dist', 'main.json'),
    JSON.stringify({ sources: { 'src/main.ts': sha256(join(dir, 'src', 'main.ts')) } }),
  );
  const bugzot = (env: Record<string, string> = {}) => run(['bin/bugzot.js'], { cwd: dir, env });

  assert.equal((await bugzot()).out, 'dist\n');
  assert.equal((await bugzot({ BUGZOT_FROM_SOURCE: '1' })).out, 'sources\n', 'forced to the sources');

  appendFileSync(join(dir, 'src', 'main.ts'), '// edited after the build\n');
  const stale = await bugzot({ NODE_ENV: 'production' });
  assert.equal(stale.out, 'sources\n', 'a stale build is not run');
  assert.match(stale.err, /dist\/ was built from other sources.*npm run build/);
  assert.equal((await bugzot()).err, '', 'the warning is for production only');

  rmSync(join(dir, 'dist', 'main.json'));
  assert.equal((await bugzot({ NODE_ENV: 'production' })).out, 'sources\n', 'no manifest, no bundle');
});

async function freePort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

test('npm run build bundles a server that runs without tsx: migrations, assets and version found from dist/', async (t) => {
  // A copy of the tree whose node_modules lacks tsx: whatever runs there, runs from the bundle.
  const dir = tempDir();
  for (const entry of ['bin', 'src', 'migrations', 'scripts', 'package.json', 'tsconfig.json'])
    cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  mkdirSync(join(dir, 'node_modules'));
  for (const pkg of readdirSync(join(ROOT, 'node_modules')))
    if (pkg !== 'tsx') symlinkSync(join(ROOT, 'node_modules', pkg), join(dir, 'node_modules', pkg));

  // The build itself runs through the working tree's tsx (as `npm run build` does in a full install).
  const build = await run(['--import', 'tsx', join(dir, 'scripts', 'build.ts')], { cwd: ROOT });
  assert.equal(build.code, 0, build.err);
  assert.match(build.out, /dist\/main\.js: \d+ source files bundled/);
  const manifest = JSON.parse(readFileSync(join(dir, 'dist', 'main.json'), 'utf8')) as {
    sources: Record<string, string>;
  };
  assert.equal(manifest.sources['src/main.ts'], sha256(join(dir, 'src', 'main.ts')));
  assert.ok(!Object.keys(manifest.sources).some((f) => f.includes('node_modules')), 'packages stay external');

  const version = await run(['bin/bugzot.js', '--version'], { cwd: dir });
  assert.equal(version.code, 0, version.err);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(version.out.trim(), pkg.version);
  // The thread that inflates uploaded bundles has an entry of its own, emitted beside main.js.
  assert.ok(existsSync(join(dir, 'dist', 'inflate-worker.js')), 'dist/inflate-worker.js');
  const dbEnv = { DATABASE_URL: '', DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'warn' };
  const added = await runNode(
    [
      'bin/bugzot.js',
      'user',
      'add',
      '--email',
      'admin@example.com',
      '--admin',
      '--internal',
      '--password-stdin',
    ],
    { cwd: dir, env: dbEnv, omitEnv: ['BUGZOT_FROM_SOURCE'], input: 'correct horse battery staple\n' },
  );
  assert.equal(added.code, 0, added.err);

  const port = await freePort();
  let server: ChildProcess | undefined;
  t.after(() => {
    server?.kill('SIGKILL');
  });
  const { NODE_TEST_CONTEXT: _ctx, ...env } = process.env;
  server = spawn(
    process.execPath,
    ['bin/bugzot.js', 'serve', '--host', '127.0.0.1', '--port', String(port)],
    {
      cwd: dir,
      env: { ...env, ...dbEnv },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  server.stderr!.on('data', (d) => (err += d));
  const base = `http://127.0.0.1:${port}`;
  let ready = false;
  for (let i = 0; i < 600 && !ready && server.exitCode === null; i++) {
    ready = await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(ready, `the bundled server did not become ready: ${err}`);
  // The migrations ran (sign-in page needs the users table), the browser assets were bundled at start.
  assert.equal((await fetch(`${base}/signin`)).status, 200);
  const css = await fetch(`${base}/assets/app.css`);
  assert.equal(css.status, 200);
  assert.equal(await css.text(), readFileSync(join(dir, 'src', 'web', 'assets', 'app.css'), 'utf8'));

  // A .tgz upload is inflated and listed by the bundled inflater thread (no tsx to load a .ts entry).
  const signin = await fetch(`${base}/api/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@example.com', password: 'correct horse battery staple' }),
  });
  assert.equal(signin.status, 200);
  const cookie = signin.headers.get('set-cookie')?.split(';')[0] ?? '';
  const keyRes = await fetch(`${base}/api/v1/api-keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie },
    body: JSON.stringify({ name: 'build test' }),
  });
  const auth = { authorization: `Bearer ${((await keyRes.json()) as { key: string }).key}` };
  const post = async (path: string, body: object) => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 201, await res.clone().text());
    return ((await res.json()) as { id: number }).id;
  };
  const product = await post('/products', { name: 'Build', is_released: true });
  const bug = await post('/bugs', {
    product_id: product,
    version_id: await post(`/products/${product}/versions`, { name: '1.0', is_released: true }),
    component_id: await post(`/products/${product}/components`, { name: 'Core' }),
    summary: 'A bundle',
  });
  const log = Buffer.from('started\n');
  const tgz = gzipSync(
    Buffer.concat([tarHeader('diag/app.log', log.length), log, Buffer.alloc(512 - log.length + 1024)]),
  );
  const upload = await fetch(`${base}/api/v1/bugs/${bug}/attachments/diag.tgz`, {
    method: 'PUT',
    headers: auth,
    body: tgz,
  });
  const attachment = (await upload.json()) as { kind: string; member_count: number };
  assert.equal(upload.status, 201, JSON.stringify(attachment));
  assert.equal(attachment.kind, 'bundle');
  assert.equal(attachment.member_count, 1);
});
