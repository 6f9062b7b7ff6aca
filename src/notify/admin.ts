/** The admin view of the job queue: failed and retrying jobs (mails, later webhooks), and retrying them. */
import { isAdmin, type Viewer } from '../access/index.ts';
import { getJob, type Job, jobCounts, listJobs, retryJob } from '../jobs/index.ts';
import { type Db, sql } from '../platform/db.ts';
import { conflict, forbidden } from '../platform/errors.ts';

/** A job as admins see it: what it is about in words, and why it failed. */
export interface AdminJob extends Job {
  summary: string;
}

function mustBeAdmin(viewer: Viewer) {
  if (!isAdmin(viewer)) throw forbidden('Only admins may see and retry background jobs.');
}

/** Describes jobs in words (a mail: to whom, about which bug). */
async function describe(db: Db, jobs: Job[]): Promise<AdminJob[]> {
  const userIds = [
    ...new Set(jobs.flatMap((j) => (typeof j.payload.userId === 'number' ? [j.payload.userId] : []))),
  ];
  const emails = new Map(
    userIds.length
      ? (
          await db.query<{ id: number; email: string }>(
            sql`SELECT id, email FROM users WHERE id = ANY(${userIds}::int[])`,
          )
        ).map((u) => [u.id, u.email])
      : [],
  );
  return jobs.map((j) => {
    const p = j.payload;
    let summary = j.kind;
    if (j.kind === 'mail.send')
      summary = `mail to ${emails.get(Number(p.userId)) ?? `user ${p.userId}`} about bug ${p.bugId}`;
    else if (j.kind === 'notify.batch') summary = `gather changes by user ${p.actorId} to bug ${p.bugId}`;
    return { ...j, summary };
  });
}

/** Jobs for the admin view (admins only). */
export async function adminListJobs(
  db: Db,
  viewer: Viewer,
  filter: {
    state?: Job['state'] | 'retrying' | undefined;
    kind?: string | undefined;
    limit?: number | undefined;
  },
): Promise<{ jobs: AdminJob[]; counts: Record<string, number> }> {
  mustBeAdmin(viewer);
  const [jobs, counts] = await Promise.all([listJobs(db, filter), jobCounts(db)]);
  return { jobs: await describe(db, jobs), counts };
}

/** Sends a failed or retrying job round again now (admins only). */
export async function adminRetryJob(db: Db, viewer: Viewer, id: number): Promise<AdminJob> {
  mustBeAdmin(viewer);
  const before = await getJob(db, id);
  if (before.state === 'done' || before.state === 'running') {
    throw conflict(
      `job ${id} is ${before.state}; only failed or waiting jobs can be retried`,
      'id',
      undefined,
      'not_retryable',
    );
  }
  const job = await retryJob(db, id);
  return (await describe(db, [job]))[0]!;
}
