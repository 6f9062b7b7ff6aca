/** Running a command-line process from a test and collecting what it printed. */
import { spawn } from 'node:child_process';

/** What a finished process printed, and its exit code (null when a signal ended it). */
export interface Ran {
  code: number | null;
  out: string;
  err: string;
}

/**
 * Runs `node <args>` to its end. The test runner's NODE_TEST_CONTEXT is not passed on (a child that
 * sees it reports to the parent's runner instead of printing); `env` is merged over the rest of this
 * process's environment, and `omitEnv` names variables to leave out.
 */
export function runNode(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; omitEnv?: string[]; input?: string } = {},
): Promise<Ran> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const name of ['NODE_TEST_CONTEXT', ...(opts.omitEnv ?? [])]) delete env[name];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      env: { ...env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
    child.stdin.end(opts.input ?? '');
  });
}
