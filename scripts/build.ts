/**
 * `npm run build`: bundles the server (src/main.ts and everything it imports from src/) into one ESM file,
 * dist/main.js, that `bin/bugzot.js` runs instead of loading the TypeScript sources through tsx (and
 * dist/inflate-worker.js, the entry of the thread that inflates uploaded bundles). The production
 * path: no transformer thread or source maps in the serving process (about 80 MB less resident memory
 * each), and a faster start. Packages stay in node_modules (not bundled).
 *
 * Beside it, dist/main.json records the SHA-256 of every source file that went in: bin/bugzot.js runs
 * the bundle only while each of them is unchanged, so a stale build never runs newer sources' release.
 * dist/main.js.map maps back to the sources (NODE_OPTIONS=--enable-source-maps to use it).
 */
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist`;
const manifest = `${root}dist/main.json`;

/**
 * Every module keeps the `import.meta.url` of its source file, expressed relative to the bundle, so
 * that files found next to the sources (migrations, package.json, the browser entries and stylesheet
 * bundled at start) are found the same way from dist/ and from src/.
 */
const sourceUrls: Plugin = {
  name: 'source-urls',
  setup(b) {
    b.onLoad({ filter: /\.tsx?$/ }, async (args) => {
      let contents = await readFile(args.path, 'utf8');
      if (contents.includes('import.meta.url')) {
        const fromBundle = relative(outdir, args.path);
        contents = contents.replaceAll(
          'import.meta.url',
          `new URL(${JSON.stringify(fromBundle)}, import.meta.url).href`,
        );
      }
      return { contents, loader: args.path.endsWith('.tsx') ? 'tsx' : 'ts' };
    });
  },
};

const started = performance.now();
// An interrupted build must not leave a manifest that vouches for an older bundle. Chunks of earlier
// builds stay (their names carry a content hash): a process still running one may load them on demand.
await rm(manifest, { force: true });
const result = await build({
  absWorkingDir: root,
  // The server, and the inflater thread's own entry (src/attachments/inflate-pool.ts starts it as
  // dist/inflate-worker.js; code both use lands in a shared chunk).
  entryPoints: { main: `${root}src/main.ts`, 'inflate-worker': `${root}src/attachments/inflate-worker.ts` },
  outdir,
  // Modules imported on demand (the S3 backend, Redis, tracing, seeding) become chunks of their own,
  // loaded with their packages only when a process needs them.
  splitting: true,
  chunkNames: '[name]-[hash]',
  bundle: true,
  packages: 'external',
  format: 'esm',
  platform: 'node',
  target: 'node20',
  keepNames: true,
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  // Lets the code tell the bundle from the sources (where a worker's entry file is).
  define: { __BUGZOT_BUNDLE__: 'true' },
  banner: { js: '// Built by `npm run build` from src/ (see scripts/build.ts); do not edit.' },
  plugins: [sourceUrls],
});

const sources: Record<string, string> = {};
for (const input of Object.keys(result.metafile.inputs).sort()) {
  sources[input] = createHash('sha256')
    .update(await readFile(`${root}${input}`))
    .digest('hex');
}
await writeFile(manifest, `${JSON.stringify({ sources }, null, 1)}\n`);
process.stdout.write(
  `dist/main.js: ${Object.keys(sources).length} source files bundled in ${(performance.now() - started).toFixed(0)} ms\n`,
);
