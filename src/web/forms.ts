/**
 * Form posts of the pages: `application/x-www-form-urlencoded` bodies parsed into one string per field.
 * A field sent twice keeps its last value, so a handler never meets an array where it expects text.
 */
import formbody from '@fastify/formbody';
import type { FastifyInstance } from 'fastify';

/** Registers the form parser for the routes of one page plugin. */
export async function formBodies(app: FastifyInstance, bodyLimit = 256 * 1024): Promise<void> {
  await app.register(formbody, {
    bodyLimit,
    parser: (text) => Object.fromEntries(new URLSearchParams(text)),
  });
}
