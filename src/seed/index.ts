/** Demo data generator: `seed(db, opts)` fills a migrated database with products, users and bugs. */
export { type SeedOptions, type SeedSummary, seed } from './seed.ts';
