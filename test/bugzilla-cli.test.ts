/**
 * A real Bugzilla client that nobody here wrote — the `bugzilla` command of Debian's bugzilla-cli
 * (python-bugzilla, REST backend because the URL holds /rest/) — against Bugzot on a real socket:
 * log in (token) and with an API key, list products, file a bug, query by product and status, modify
 * status with a comment, attach a file and download it, read history; each result checked against what Bugzot stored, read back
 * through Bugzot's own API. HOME points at a temporary folder, where the client keeps its token cache
 * and bugzillarc.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Json, startTestApp, type TestApp, world } from './helpers/app.ts';
import { testDbKind } from './helpers/db.ts';

const BUGZILLA = '/usr/bin/bugzilla';
const PASSWORD = 'correct horse battery';
/** The interpreter the bugzilla command runs on (python-bugzilla is installed for it). */
const PYTHON = '/usr/bin/python3';

/** Runs a program with HOME in a temporary folder and without the test runner's variables. */
async function run(
  cmd: string,
  args: string[],
  home: string,
  stdin = '',
): Promise<{ code: number; out: string; err: string }> {
  const { NODE_TEST_CONTEXT: _ctx, ...env } = process.env;
  const child = spawn(cmd, args, {
    env: { ...env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_CACHE_HOME: join(home, '.cache') },
    stdio: ['pipe', 'pipe', 'pipe'],
    cwd: home,
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  child.stdin.end(stdin);
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  return { code, out, err };
}

describe(`the bugzilla command against Bugzot (${testDbKind()})`, {
  skip: !existsSync(BUGZILLA) && 'bugzilla-cli is not installed',
}, () => {
  let t: TestApp;
  let w: Awaited<ReturnType<typeof world>>;
  let url: string;
  const homes: string[] = [];
  const home = () => {
    const h = mkdtempSync(join(tmpdir(), 'bugzot-bzcli-'));
    homes.push(h);
    return h;
  };
  let devHome: string;
  let filed: number;

  const dataDir = mkdtempSync(join(tmpdir(), 'bugzot-bzcli-data-'));
  before(async () => {
    t = await startTestApp({ DATA_DIR: dataDir });
    w = await world(t);
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = t.app.server.address() as { port: number };
    url = `http://127.0.0.1:${port}/rest/`;
    devHome = home();
  });
  after(async () => {
    await t.close();
    for (const h of [...homes, dataDir]) rmSync(h, { recursive: true, force: true });
  });

  /** `bugzilla --bugzilla URL ...` as the user whose HOME this is; fails the test on a non-zero exit. */
  const bugzilla = async (h: string, args: string[], stdin = '') => {
    const r = await run(BUGZILLA, ['--bugzilla', url, ...args], h, stdin);
    assert.equal(r.code, 0, `bugzilla ${args.join(' ')} exited ${r.code}:\n${r.out}\n${r.err}`);
    return r.out;
  };
  /** Bugzot's own API, for what it stored. */
  const stored = async (path: string) => {
    const res = await t.request({ method: 'GET', url: `/api/v1${path}`, as: w.users.admin });
    assert.equal(res.statusCode, 200, res.body);
    return res.data as Json;
  };

  test('login with e-mail and password caches a token; a wrong password fails', async () => {
    const bad = await run(
      BUGZILLA,
      ['--bugzilla', url, 'login', w.users.dev.email, 'not-the-password'],
      home(),
    );
    assert.notEqual(bad.code, 0);
    assert.match(bad.out + bad.err, /Login failed|not valid/);

    const out = await bugzilla(devHome, ['login', w.users.dev.email, PASSWORD]);
    assert.match(out, /Login successful/);
    const cache = readFileSync(join(devHome, '.cache', 'python-bugzilla', 'bugzillatoken'), 'utf8');
    assert.match(cache, new RegExp(`token = ${w.users.dev.id}-`));
    const check = await bugzilla(devHome, ['--ensure-logged-in', 'info', '--products']);
    assert.ok(check.includes('Omega'));
  });

  test('info lists the products the user may see, and their components and versions', async () => {
    const products = (await bugzilla(devHome, ['info', '--products'])).trim().split('\n');
    assert.deepEqual(products, ['Omega', 'Orion']);
    const components = (await bugzilla(devHome, ['info', '--components', 'Omega'])).trim().split('\n');
    assert.deepEqual(components, ['Core', 'UI']);
    const versions = (await bugzilla(devHome, ['info', '--versions', 'Omega'])).trim().split('\n');
    assert.deepEqual(versions, ['1.0', '2.0-beta']);
  });

  test('new files a bug that Bugzot stores as given', async () => {
    const out = await bugzilla(devHome, [
      'new',
      '--product',
      'Omega',
      '--component',
      'UI',
      '--version',
      '1.0',
      '--summary',
      'Toolbar icons vanish after resume',
      '--comment',
      'Suspend, resume: the icons are gone.',
      '--severity',
      'major',
      '--os',
      'Linux',
      '--arch',
      'x86_64',
    ]);
    const m = /^#(\d+)\s+NEW\s+- .* - Toolbar icons vanish after resume$/m.exec(out);
    assert.ok(m, out);
    filed = Number(m[1]);
    const bug = await stored(`/bugs/${filed}`);
    assert.equal(bug.summary, 'Toolbar icons vanish after resume');
    assert.equal(bug.description, 'Suspend, resume: the icons are gone.');
    assert.equal(bug.severity, 'major');
    assert.equal(bug.product.name, 'Omega');
    assert.equal(bug.component.name, 'UI');
    assert.equal(bug.version.name, '1.0');
    assert.equal(bug.reporter.id, w.users.dev.id);
    assert.equal(bug.status, 'NEW');
  });

  test('query by product and status finds exactly the matching bugs Bugzot holds', async () => {
    const out = await bugzilla(devHome, ['query', '--product', 'Omega', '--status', 'NEW', '--ids']);
    const ids = out
      .trim()
      .split('\n')
      .map(Number)
      .sort((a, b) => a - b);
    const list = await stored(`/bugs?product_id=${w.products.omega.id}&status=NEW&limit=500`);
    const expected = (list.bugs as Json[]).map((b) => b.id as number).sort((a, b) => a - b);
    assert.deepEqual(ids, expected);
    assert.ok(ids.includes(filed));
    const oneline = await bugzilla(devHome, [
      'query',
      '--id',
      String(filed),
      '--outputformat',
      '%{id}|%{status}|%{component}|%{summary}',
    ]);
    assert.equal(oneline.trim(), `${filed}|NEW|UI|Toolbar icons vanish after resume`);
  });

  test('modify changes the status and adds a comment, as Bugzot then shows', async () => {
    await bugzilla(devHome, [
      'modify',
      String(filed),
      '--status',
      'ASSIGNED',
      '--assigned_to',
      w.users.dev.email,
      '--comment',
      'Reproduced on 1.0; looking into it.',
    ]);
    const bug = await stored(`/bugs/${filed}`);
    assert.equal(bug.status, 'ASSIGNED');
    assert.equal(bug.assignee.id, w.users.dev.id);
    const comments = await stored(`/bugs/${filed}/comments`);
    assert.equal(comments.comments.at(-1).body, 'Reproduced on 1.0; looking into it.');
    assert.equal(comments.comments.at(-1).author.id, w.users.dev.id);

    await bugzilla(devHome, ['modify', String(filed), '--status', 'RESOLVED', '--field', 'resolution=FIXED']);
    const resolved = await stored(`/bugs/${filed}`);
    assert.deepEqual([resolved.status, resolved.resolution], ['RESOLVED', 'FIXED']);
    // A step the workflow refuses fails in the client and changes nothing.
    const refused = await run(
      BUGZILLA,
      ['--bugzilla', url, 'modify', String(filed), '--status', 'NEW'],
      devHome,
    );
    assert.notEqual(refused.code, 0);
    assert.equal((await stored(`/bugs/${filed}`)).status, 'RESOLVED');
  });

  test('attach uploads a file Bugzot stores byte for byte; attach --get downloads it again', async () => {
    const text = 'kernel: resume from S3\nicons: 0 of 24 drawn\n';
    // Piped stdin is the file's content (the client's rule when stdin is not a terminal).
    const out = await bugzilla(
      devHome,
      [
        'attach',
        '--file',
        'resume.log',
        '--description',
        'Log after resume',
        '--type',
        'text/plain',
        String(filed),
      ],
      text,
    );
    const m = /Created attachment (\d+) on bug (\d+)/.exec(out);
    assert.ok(m, out);
    const attId = Number(m[1]);
    assert.equal(Number(m[2]), filed);
    const meta = await stored(`/attachments/${attId}`);
    assert.equal(meta.bug_id, filed);
    assert.equal(meta.file_name, 'resume.log');
    assert.equal(meta.size, Buffer.byteLength(text));
    const content = await t.request({
      method: 'GET',
      url: `/api/v1/attachments/${attId}/content`,
      as: w.users.admin,
    });
    assert.equal(content.body, text);

    const refused = await run(BUGZILLA, ['--bugzilla', url, 'attach', '--get', String(attId)], home());
    assert.notEqual(refused.code, 0, 'no credentials in that HOME: refused');
    const again = await bugzilla(devHome, ['attach', '--get', String(attId)]);
    assert.match(again, /Wrote resume\.log/);
    assert.equal(readFileSync(join(devHome, 'resume.log'), 'utf8'), text);
  });

  test("history read through python-bugzilla matches Bugzot's history", async () => {
    const script = [
      'import bugzilla, json, sys',
      'bz = bugzilla.Bugzilla(sys.argv[1])',
      'print(json.dumps(bz.bugs_history_raw([int(sys.argv[2])])))',
    ].join('\n');
    const r = await run(PYTHON, ['-c', script, url, String(filed)], devHome);
    assert.equal(r.code, 0, r.err);
    const history = JSON.parse(r.out).bugs[0].history as Json[];
    const ours = (await stored(`/bugs/${filed}/history`)).history as Json[];
    const flat = history.flatMap((h) =>
      h.changes.map((c: Json) => `${h.who}:${c.field_name}:${c.removed}>${c.added}`),
    );
    assert.ok(flat.includes(`${w.users.dev.email}:status:NEW>ASSIGNED`), flat.join('\n'));
    assert.ok(flat.includes(`${w.users.dev.email}:status:ASSIGNED>RESOLVED`), flat.join('\n'));
    assert.ok(flat.includes(`${w.users.dev.email}:resolution:>FIXED`), flat.join('\n'));
    assert.equal(flat.length, ours.length);
  });

  test('an external user with an API key in bugzillarc sees no confidential or internal bug', async () => {
    const h = home();
    const out = await bugzilla(h, ['login', '--api-key'], `${w.users.alice.key}\n`);
    assert.match(out, /API key written/);
    const products = (await bugzilla(h, ['info', '--products'])).trim().split('\n');
    assert.deepEqual(products, ['Omega']);
    const ids = (await bugzilla(h, ['query', '--product', 'Omega,Orion', '--ids']))
      .trim()
      .split('\n')
      .map(Number);
    assert.deepEqual(
      ids.sort((a, b) => a - b),
      [w.bugs.public.id, w.bugs.aliceOwn.id, filed].sort((a, b) => a - b),
    );
    const hidden = await run(
      BUGZILLA,
      ['--bugzilla', url, 'query', '--id', String(w.bugs.confidential.id), '--ids'],
      h,
    );
    assert.equal(hidden.out.trim(), '');
    // Filing with the key works too, and the bug is hers.
    const filedOut = await bugzilla(h, [
      'new',
      '-p',
      'Omega',
      '-c',
      'Core',
      '-v',
      '1.0',
      '-t',
      'Customer report via bugzilla-cli',
      '-l',
      'It broke.',
    ]);
    const id = Number(/^#(\d+)/m.exec(filedOut)?.[1]);
    assert.equal((await stored(`/bugs/${id}`)).reporter.id, w.users.alice.id);
  });

  test('logout ends the token: the cached token is refused afterwards', async () => {
    const script = [
      'import bugzilla, sys',
      'bz = bugzilla.Bugzilla(sys.argv[1])',
      'print(bz.logged_in)',
      'print(bz.getbug(int(sys.argv[2])).summary)',
      'bz.logout()',
      'try:',
      '    bugzilla.Bugzilla(sys.argv[1]).getbug(int(sys.argv[2]))',
      '    print("still in")',
      'except Exception as e:',
      '    print("refused", e)',
    ].join('\n');
    const r = await run(PYTHON, ['-c', script, url, String(filed)], devHome);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n');
    assert.deepEqual(lines.slice(0, 2), ['True', 'Toolbar icons vanish after resume']);
    // Bugzilla answers a dead token with code 32000 and HTTP 400, which python-bugzilla raises.
    assert.match(lines[2] ?? '', /^refused 400 Client Error/);
  });
});
