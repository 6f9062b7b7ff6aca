/**
 * Admin: mails (and other background jobs) that failed or keep failing, with why, and a button to send
 * each round again. Bad SMTP credentials or a refusing provider show up here.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { adminListJobs, adminRetryJob } from '../notify/index.ts';
import type { Db } from '../platform/db.ts';
import { formBodies } from './forms.ts';
import { Layout, pageContext } from './layout.tsx';

type Jobs = Awaited<ReturnType<typeof adminListJobs>>['jobs'];

const when = (d: Date | null) => (d ? d.toISOString().slice(0, 19).replace('T', ' ') : '—');

function JobTable(props: { caption: string; jobs: Jobs; csrf: string; next: string }) {
  if (props.jobs.length === 0) return <p safe>{`${props.caption}: none.`}</p>;
  return (
    <table>
      <caption safe>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">Job</th>
          <th scope="col">What</th>
          <th scope="col">Attempts</th>
          <th scope="col">Last error</th>
          <th scope="col" safe>
            {props.next}
          </th>
          <th scope="col">Action</th>
        </tr>
      </thead>
      <tbody>
        {props.jobs.map((j) => (
          <tr>
            <td>{String(j.id)}</td>
            <td safe>{j.summary}</td>
            <td>{String(j.attempts)}</td>
            <td>
              <code safe>{j.lastError ?? ''}</code>
            </td>
            <td safe>{when(j.state === 'failed' ? j.finishedAt : j.runAt)}</td>
            <td>
              <form method="post" action={`/admin/mail/jobs/${j.id}/retry`}>
                <input type="hidden" name="_csrf" value={props.csrf} />
                <button type="submit" aria-label={`Retry job ${j.id} now`}>
                  Retry now
                </button>
              </form>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function AdminMailPage(props: {
  request: FastifyRequest;
  failed: Jobs;
  retrying: Jobs;
  counts: Record<string, number>;
  notice?: string | undefined;
}) {
  const ctx = pageContext(props.request);
  const c = props.counts;
  return (
    <Layout title="Mail delivery" ctx={ctx}>
      <h1>Mail delivery</h1>
      {props.notice ? (
        <p role="status" safe>
          {props.notice}
        </p>
      ) : (
        ''
      )}
      <p safe>
        {`Jobs: ${c['pending'] ?? 0} waiting, ${c['running'] ?? 0} running, ${c['done'] ?? 0} done, ${c['failed'] ?? 0} failed.`}
      </p>
      <JobTable caption="Failed (gave up)" jobs={props.failed} csrf={ctx.csrf} next="Gave up" />
      <JobTable caption="Failing, will retry" jobs={props.retrying} csrf={ctx.csrf} next="Next attempt" />
    </Layout>
  );
}

/** Registers /admin/mail (admins only: others get 403). */
export async function adminMailPages(app: FastifyInstance, { db }: { db: Db }) {
  await formBodies(app, 16 * 1024);

  const render = async (request: FastifyRequest, notice?: string) => {
    const [failed, retrying] = await Promise.all([
      adminListJobs(db, request.viewer, { state: 'failed', limit: 200 }),
      adminListJobs(db, request.viewer, { state: 'retrying', limit: 200 }),
    ]);
    return (
      <AdminMailPage
        request={request}
        failed={failed.jobs}
        retrying={retrying.jobs}
        counts={failed.counts}
        notice={notice}
      />
    );
  };

  app.get<{ Querystring: { retried?: string } }>('/admin/mail', async (request, reply) => {
    const retried = request.query.retried;
    const notice =
      retried && /^\d{1,12}$/.test(retried) ? `Job ${retried} will be tried again now.` : undefined;
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(await render(request, notice));
  });

  app.post<{ Params: { id: string } }>('/admin/mail/jobs/:id/retry', async (request, reply) => {
    const id = Number(request.params.id);
    if (!Number.isInteger(id) || id < 1) return reply.redirect('/admin/mail', 303);
    const job = await adminRetryJob(db, request.viewer, id);
    return reply.redirect(`/admin/mail?retried=${job.id}`, 303);
  });
}
