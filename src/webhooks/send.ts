/** The HTTP POST of one delivery: bounded time, first 1 KB of the answer kept, never rejects. */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { type AddressPolicy, guardedLookup } from './address.ts';

const TIMEOUT_MS = 10_000;
const EXCERPT_BYTES = 1024;

/** What one POST came to. */
export interface Outcome {
  status?: number;
  excerpt?: string;
  error?: string;
  durationMs: number;
}

/** POSTs `body`; resolves (never rejects) with what happened. */
export function post(
  policy: AddressPolicy,
  url: URL,
  body: string,
  headers: Record<string, string>,
): Promise<Outcome> {
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      lookup: guardedLookup(policy),
      timeout: TIMEOUT_MS,
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${TIMEOUT_MS / 1000} s`)));
    req.on('error', (err) => resolve({ error: err.message, durationMs: took() }));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < EXCERPT_BYTES) chunks.push(c);
        size += c.length;
      });
      res.on('error', (err) => resolve({ error: err.message, durationMs: took() }));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          excerpt: Buffer.concat(chunks).subarray(0, EXCERPT_BYTES).toString('utf8'),
          durationMs: took(),
        }),
      );
    });
    req.end(body);
  });
}
