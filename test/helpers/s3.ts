/**
 * A real S3-compatible server for the tests: s3rver (npm, dev dependency) on 127.0.0.1, a free port,
 * its data in a fresh temporary folder, with one bucket. Returns the environment that points Bugzot's
 * S3 backend at it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error s3rver ships no type declarations.
import S3rver from 's3rver';

/** A running s3rver. */
export interface TestS3 {
  /** Variables that make Bugzot use this server (STORAGE_BACKEND=s3 and the S3_* settings). */
  env: Record<string, string>;
  endpoint: string;
  bucket: string;
  /** Stops the server (storage errors follow until `start` again). */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder. */
  start(): Promise<void>;
  /** Stops it for good and removes its folder. */
  close(): Promise<void>;
}

/** Starts s3rver with bucket `bugzot`. */
export async function startS3(): Promise<TestS3> {
  const directory = mkdtempSync(join(tmpdir(), 'bugzot-s3-'));
  const bucket = 'bugzot';
  let port = 0;
  // biome-ignore lint/suspicious/noExplicitAny: s3rver is untyped.
  let server: any;
  const start = async () => {
    server = new S3rver({
      port,
      address: '127.0.0.1',
      directory,
      silent: true,
      configureBuckets: [{ name: bucket }],
    });
    const address = (await server.run()) as { port: number };
    port = address.port;
  };
  await start();
  const endpoint = `http://127.0.0.1:${port}`;
  let running = true;
  return {
    endpoint,
    bucket,
    env: {
      STORAGE_BACKEND: 's3',
      S3_ENDPOINT: endpoint,
      S3_BUCKET: bucket,
      S3_REGION: 'us-east-1',
      S3_ACCESS_KEY_ID: 'S3RVER',
      S3_SECRET_ACCESS_KEY: 'S3RVER',
      S3_FORCE_PATH_STYLE: 'true',
    },
    async stop() {
      if (running) await server.close();
      running = false;
    },
    async start() {
      if (!running) await start();
      running = true;
    },
    async close() {
      if (running) await server.close();
      running = false;
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
