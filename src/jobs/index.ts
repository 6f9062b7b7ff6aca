/** The durable job queue: enqueue in a transaction, run with workers, inspect and retry as an admin. */
export {
  backoffMs,
  enqueue,
  getJob,
  type Job,
  type JobFilter,
  jobCounts,
  listJobs,
  type NewJob,
  retryJob,
} from './queue.ts';
export { type Defer, type JobHandler, PermanentJobError, Worker, type WorkerOptions } from './worker.ts';
