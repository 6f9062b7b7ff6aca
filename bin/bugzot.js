#!/usr/bin/env node
// Entry point of the `bugzot` command. Runs the compiled bundle, dist/main.js (`npm run build`), when it
// was built from exactly the sources in src/ (dist/main.json holds their SHA-256); otherwise loads the
// TypeScript sources through tsx, so that `npm start` works with no build step. The bundle is the
// production path (the Dockerfile and deploy recipes build it): the tsx transformer is not loaded (a thread
// and ~80 MB of resident memory less per process). BUGZOT_FROM_SOURCE=1 forces the sources.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

// Dead ArrayBuffers (an upload allocates ~2 GiB of them per GiB received: socket reads and inflater
// output) are freed during the scavenge itself rather than by a background task. With the background
// sweep, an upload after an idle spell mostly made V8 run a full mark-compact every ~100 ms for its whole
// length (2-3x the CPU per GiB); with this, mostly not (bench/README.md, Uploads). Set before the app
// loads, for every command and cluster worker.
setFlagsFromString('--no-concurrent-array-buffer-sweeping');

const root = new URL('../', import.meta.url);

/** The bundle, when it is there and every source file it was built from is unchanged. */
function freshBundle() {
  if (process.env.BUGZOT_FROM_SOURCE === '1') return undefined;
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(new URL('dist/main.json', root), 'utf8'));
  } catch {
    return undefined;
  }
  try {
    for (const [file, sha256] of Object.entries(manifest.sources)) {
      const now = createHash('sha256')
        .update(readFileSync(new URL(file, root)))
        .digest('hex');
      if (now !== sha256) return 'stale';
    }
  } catch {
    return 'stale';
  }
  return new URL('dist/main.js', root);
}

const bundle = freshBundle();
if (bundle instanceof URL) {
  await import(bundle.href);
} else {
  if (bundle === 'stale' && process.env.NODE_ENV === 'production' && !process.env.BUGZOT_CLUSTER_WORKER) {
    process.stderr.write(
      'bugzot: dist/ was built from other sources than src/ holds now: running the sources through tsx; ' +
        'run `npm run build` again for the lighter production process\n',
    );
  }
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
