/**
 * The shipped nginx configuration (deploy/nginx), made runnable in a temp folder: the /etc paths it includes
 * pointed at copies, a throwaway self-signed certificate, and a wrapping nginx.conf. Used by the static check
 * (`nginx -t`) and by the production suite, which runs it in front of real Bugzot servers.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const NGINX_DIR = fileURLToPath(new URL('../../deploy/nginx/', import.meta.url));

/** The nginx binary, or undefined when it is not installed. */
export function nginxPath(): string | undefined {
  for (const p of ['/usr/sbin/nginx']) if (spawnSync(p, ['-v']).error === undefined) return p;
  const r = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() || undefined : undefined;
}

export interface NginxHarnessOptions {
  /** Which site file of deploy/nginx to use. */
  site: 'bugzot.conf' | 'compose.conf';
  /** Changes to the site text before the paths are rewritten (ports, upstream hosts). */
  rewrite?: (text: string) => string;
  /** Replaces a snippet's text (e.g. upstream.conf with the test's servers). */
  snippets?: Record<string, string>;
}

/** Writes the runnable configuration under `dir`; returns the nginx.conf path. */
export function nginxHarness(dir: string, opts: NginxHarnessOptions): string {
  const inc = join(dir, 'bugzot');
  mkdirSync(inc, { recursive: true });
  // nginx's workers run as another user when started by root: they must be able to read all of it.
  chmodSync(dir, 0o755);
  const pointAt = (text: string): string =>
    text
      .replaceAll('/etc/nginx/bugzot/', `${inc}/`)
      .replaceAll('/etc/ssl/bugzot/fullchain.pem', join(dir, 'cert.pem'))
      .replaceAll('/etc/ssl/bugzot/privkey.pem', join(dir, 'key.pem'));
  // Every shipped snippet (all but the two site files) goes where the site includes it from.
  for (const f of readdirSync(NGINX_DIR)) {
    if (!f.endsWith('.conf') || f === 'bugzot.conf' || f === 'compose.conf') continue;
    const text = opts.snippets?.[f] ?? readFileSync(join(NGINX_DIR, f), 'utf8');
    writeFileSync(join(inc, f), pointAt(text));
  }
  // biome-ignore format: one option per line reads worse here
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  chmodSync(join(dir, 'key.pem'), 0o644);
  const rewrite = opts.rewrite ?? ((t: string) => t);
  writeFileSync(join(inc, 'site.conf'), pointAt(rewrite(readFileSync(join(NGINX_DIR, opts.site), 'utf8'))));
  const conf = join(dir, 'nginx.conf');
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((k) => `  ${k}_temp_path ${dir}/${k}_temp;`)
    .join('\n');
  writeFileSync(
    conf,
    [
      'daemon off;',
      'master_process on;',
      'worker_processes 1;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      'events { worker_connections 1024; }',
      'http {',
      '  access_log off;',
      temp,
      `  include ${inc}/site.conf;`,
      '}',
      '',
    ].join('\n'),
  );
  return conf;
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** A running nginx; stop() ends it. */
export interface RunningNginx {
  stop(): Promise<void>;
  errors(): string;
}

/** Starts nginx on a harness configuration and waits until `port` accepts connections. */
export async function startNginx(dir: string, conf: string, port: number): Promise<RunningNginx> {
  const bin = nginxPath();
  if (!bin) throw new Error('nginx is not installed');
  const child: ChildProcess = spawn(bin, ['-c', conf, '-p', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${err}`);
    if (await accepts(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not listen on ${port}: ${err}`);
    }
    await sleep(50);
  }
  return {
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGQUIT');
      await exited;
    },
    errors: () => {
      try {
        return err + readFileSync(join(dir, 'error.log'), 'utf8');
      } catch {
        return err;
      }
    },
  };
}
