// bugzot-test: once
/**
 * Static checks of what deploy/ ships, with the real tools where this machine has them (CI installs them):
 * `nginx -t` on both nginx configurations, `systemd-analyze verify` on the units, yamllint (strict) on every
 * YAML file, shellcheck on the shell scripts, and the Dockerfile's promises (production dependencies only,
 * non-root, HEALTHCHECK, build number and commit as build args, the README's install steps).
 * A missing tool skips its check on a developer's machine and fails it under CI=true.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { nginxHarness } from './helpers/nginx.ts';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const work = mkdtempSync(join(tmpdir(), 'bugzot-deploy-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The path of an executable, or undefined; under CI a missing tool is a failure, elsewhere a skip. */
function tool(name: string, paths: string[] = []): string | undefined {
  for (const p of paths) {
    if (spawnSync(p, ['--version']).error === undefined) return p;
  }
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status === 0 && path) return path;
  if (process.env['CI'] === 'true')
    assert.fail(`${name} is not installed (add it to APT_PACKAGES in .ci/run)`);
  return undefined;
}

/** Runs a tool, failing the test with everything it printed when it exits non-zero. */
function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}

/** Every file under a folder, recursively, as paths relative to ROOT. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const rel = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(rel));
    else out.push(rel);
  }
  return out;
}

/** A runnable copy of the shipped nginx configuration in its own temp folder. */
function harness(
  name: string,
  site: 'bugzot.conf' | 'compose.conf',
  rewrite?: (text: string) => string,
): string {
  return nginxHarness(join(work, name), rewrite ? { site, rewrite } : { site });
}

test('nginx accepts the production configuration (TLS, rate limit, uploads, internal-only paths)', (t) => {
  const nginx = tool('nginx', ['/usr/sbin/nginx']);
  if (!nginx) return t.skip('nginx is not installed');
  const conf = harness('prod', 'bugzot.conf');
  const out = run(nginx, ['-t', '-c', conf, '-p', join(work, 'prod')]);
  assert.match(out, /test is successful/);
  const site = readFileSync(join(DEPLOY, 'nginx', 'bugzot.conf'), 'utf8');
  assert.match(site, /limit_req_zone \$binary_remote_addr zone=\w+:\w+ rate=20r\/s;/);
  assert.match(site, /limit_req_status 429;/);
  assert.match(site, /proxy_request_buffering off;/);
  assert.match(site, /Strict-Transport-Security|hsts\.conf/);
  assert.match(site, /location = \/metrics \{\s*include \/etc\/nginx\/bugzot\/internal-only\.conf;/);
  const proxy = readFileSync(join(DEPLOY, 'nginx', 'proxy.conf'), 'utf8');
  assert.match(proxy, /X-Real-IP \$remote_addr/);
  assert.match(proxy, /X-Forwarded-For \$proxy_add_x_forwarded_for/);
});

test('nginx accepts the compose configuration', (t) => {
  const nginx = tool('nginx', ['/usr/sbin/nginx']);
  if (!nginx) return t.skip('nginx is not installed');
  // The `app` host name exists only inside compose's network.
  const conf = harness('compose', 'compose.conf', (text) =>
    text.replace('server app:3000', 'server 127.0.0.1:3000'),
  );
  assert.match(run(nginx, ['-t', '-c', conf, '-p', join(work, 'compose')]), /test is successful/);
});

test('systemd accepts the units, which are hardened and restart on failure', (t) => {
  const analyze = tool('systemd-analyze');
  if (!analyze) return t.skip('systemd-analyze is not installed');
  const dir = join(work, 'units');
  mkdirSync(dir, { recursive: true });
  const units = readdirSync(join(DEPLOY, 'systemd')).filter((f) => f.endsWith('.service'));
  assert.deepEqual(units.sort(), ['bugzot-worker.service', 'bugzot.service']);
  for (const unit of units) {
    const text = readFileSync(join(DEPLOY, 'systemd', unit), 'utf8');
    for (const directive of [
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'PrivateTmp=yes',
      'User=bugzot',
    ]) {
      assert.ok(text.includes(directive), `${unit} lacks ${directive}`);
    }
    assert.match(text, /^Restart=(on-failure|always)$/m, `${unit} has no restart policy`);
    // Node may live elsewhere than /usr/bin on this machine; verify checks the executable exists.
    writeFileSync(join(dir, unit), text.replaceAll('/usr/bin/node', process.execPath));
  }
  run(analyze, ['verify', ...units.map((u) => join(dir, u))]);
  const web = readFileSync(join(DEPLOY, 'systemd', 'bugzot.service'), 'utf8');
  assert.match(web, /^ExecStartPre=.* migrate$/m, 'migrations run once per start');
  assert.match(web, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m, 'reload is a rolling restart');
});

test('every YAML file passes yamllint (strict)', (t) => {
  const yamllint = tool('yamllint');
  if (!yamllint) return t.skip('yamllint is not installed');
  const files = filesUnder('deploy').filter((f) => /\.ya?ml$/.test(f));
  assert.ok(files.length >= 2, `expected compose and Swarm files, found ${files.join(', ')}`);
  run(yamllint, ['--strict', '-c', join(ROOT, '.yamllint.yaml'), ...files.map((f) => join(ROOT, f))]);
});

test('every shell script passes shellcheck', (t) => {
  const shellcheck = tool('shellcheck');
  if (!shellcheck) return t.skip('shellcheck is not installed');
  const scripts = [
    '.ci/run',
    ...['deploy', 'scripts', 'bench'].flatMap((d) => filesUnder(d)).filter((f) => f.endsWith('.sh')),
  ];
  run(shellcheck, ['--severity=style', ...scripts.map((f) => join(ROOT, f))]);
});

test('the Dockerfile builds a small, non-root, health-checked image from the README install steps', () => {
  const text = readFileSync(join(DEPLOY, 'docker', 'Dockerfile'), 'utf8');
  const stages = [...text.matchAll(/^FROM\s+\S+\s+AS\s+(\S+)$/gm)].map((m) => m[1]);
  assert.ok(stages.length >= 2, 'multi-stage');
  assert.match(text, /^RUN npm ci --omit=dev\b/m, 'production dependencies only, from the lock file');
  assert.match(text, /^USER node$/m, 'runs as a non-root user');
  assert.match(text, /^HEALTHCHECK /m);
  assert.match(text, /^ARG BUILD_NUMBER=/m);
  assert.match(text, /^ARG GIT_COMMIT=/m);
  assert.match(text, /BUILD_NUMBER=\$\{BUILD_NUMBER\}/);
  // Every folder the app reads at run time is copied in; nothing from the test or bench folders.
  for (const dir of ['bin', 'src', 'migrations'])
    assert.match(text, new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'));
  assert.doesNotMatch(text, /^COPY (test|bench)\b/m);
  const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
  for (const entry of ['node_modules', '.git', 'data'])
    assert.ok(ignore.includes(entry), `.dockerignore lacks ${entry}`);
  // The documented install steps are the image's: `npm ci --omit=dev`, then the bugzot command.
  const ops = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
  assert.ok(ops.includes('npm ci --omit=dev'), 'docs/operations.md gives the same install step');
});

test('the Ansible playbook passes ansible-playbook --syntax-check', (t) => {
  const ansible = tool('ansible-playbook');
  if (!ansible) return t.skip('ansible-playbook is not installed');
  const dir = join(DEPLOY, 'ansible');
  const out = run(ansible, [
    '--syntax-check',
    '-i',
    join(dir, 'inventory.example.ini'),
    join(dir, 'playbook.yml'),
  ]);
  assert.match(out, /playbook: .*playbook\.yml/);
  // Every template the playbook names exists, and the units and nginx files it copies are the shipped ones.
  const playbook = readFileSync(join(dir, 'playbook.yml'), 'utf8');
  for (const m of playbook.matchAll(/^\s+- ([\w.-]+\.(?:conf|service))$/gm)) {
    const name = m[1] ?? '';
    const shipped = [
      join(DEPLOY, 'nginx', name),
      join(DEPLOY, 'systemd', name),
      join(dir, 'templates', `${name}.j2`),
    ];
    assert.ok(
      shipped.some((p) => spawnSync('test', ['-f', p]).status === 0),
      `${name} is named by the playbook but not shipped`,
    );
  }
  for (const v of ['bugzot_workers', 'bugzot_port', 'bugzot_domain']) {
    assert.match(readFileSync(join(dir, 'group_vars', 'all.yml'), 'utf8'), new RegExp(`^${v}:`, 'm'));
  }
});

test('the Terraform files parse, declare every variable they use, and build the whole AWS stack', async () => {
  const { parse } = await import('@cdktf/hcl2json');
  const dir = join(DEPLOY, 'terraform');
  const files = readdirSync(dir).filter((f) => f.endsWith('.tf'));
  const declared = new Set<string>();
  const resources = new Set<string>();
  const outputs = new Set<string>();
  let source = '';
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'utf8');
    source += text;
    const doc = (await parse(f, text)) as {
      variable?: Record<string, unknown>;
      resource?: Record<string, unknown>;
      output?: Record<string, unknown>;
    };
    for (const v of Object.keys(doc.variable ?? {})) declared.add(v);
    for (const r of Object.keys(doc.resource ?? {})) resources.add(r);
    for (const o of Object.keys(doc.output ?? {})) outputs.add(o);
  }
  const used = new Set([...source.matchAll(/\bvar\.(\w+)/g)].map((m) => m[1] ?? ''));
  for (const v of used) assert.ok(declared.has(v), `var.${v} is used but not declared`);
  for (const r of [
    'aws_vpc',
    'aws_lb',
    'aws_autoscaling_group',
    'aws_db_instance',
    'aws_elasticache_replication_group',
    'aws_s3_bucket',
    'aws_ses_domain_identity',
  ]) {
    assert.ok(resources.has(r), `no ${r}`);
  }
  assert.ok(outputs.has('load_balancer_dns_name'));
  // The user-data template gets exactly the values it interpolates.
  const tpl = readFileSync(join(dir, 'templates', 'user-data.sh.tftpl'), 'utf8');
  const wanted = new Set([...tpl.matchAll(/(?<!\$)\$\{(\w+)\}/g)].map((m) => m[1] ?? ''));
  const call = /templatefile\("\$\{path\.module\}\/templates\/user-data\.sh\.tftpl", \{([\s\S]*?)\}\)\)/.exec(
    source,
  );
  assert.ok(call, 'compute.tf renders the user data template');
  const given = new Set([...(call[1] ?? '').matchAll(/^\s*(\w+)\s*=/gm)].map((m) => m[1] ?? ''));
  assert.deepEqual([...wanted].sort(), [...given].sort());
});

test('the alert rules pass promtool, and every PromQL expression of the Grafana dashboard parses', async (t) => {
  const { parser } = await import('@prometheus-io/lezer-promql');
  const errorsIn = (expr: string): number => {
    let errors = 0;
    parser.parse(expr).iterate({
      enter(node) {
        if (node.type.isError) errors++;
      },
    });
    return errors;
  };
  assert.ok(errorsIn('sum by (le (rate(x[5m])') > 0, 'the parser does find errors');
  const dashboard = JSON.parse(
    readFileSync(join(DEPLOY, 'monitoring', 'grafana-dashboard.json'), 'utf8'),
  ) as {
    uid: string;
    panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  };
  assert.ok(dashboard.uid);
  assert.ok(dashboard.panels.length >= 10);
  for (const panel of dashboard.panels) {
    for (const { expr } of panel.targets) {
      // Grafana's variables stand for a range and a label value.
      const promql = expr.replaceAll('$__rate_interval', '5m').replaceAll('$job', 'bugzot');
      assert.equal(errorsIn(promql), 0, `panel "${panel.title}": ${expr}`);
    }
  }
  const promtool = tool('promtool');
  if (!promtool) return t.skip('promtool is not installed');
  assert.match(
    run(promtool, ['check', 'rules', join(DEPLOY, 'monitoring', 'alerts.yaml')]),
    /SUCCESS: \d+ rules found/,
  );
});
