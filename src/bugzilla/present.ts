/**
 * Presenters: Bugzot's bugs, comments, history, products and users in Bugzilla 5's shapes and field
 * names. People are named by e-mail address (Bugzilla's login name) only to those who may see the
 * address (staff, and the person themselves); others get the display name, as everywhere in Bugzot.
 */
import { isStaff, type Viewer } from '../access/index.ts';
import type { FullBugRow } from '../bugs/index.ts';
import type { Queryable } from '../platform/db.ts';
import { bzDate } from './fields.ts';
import { type UserIdentity, usersById } from './repository.ts';

/** A bug as the bugs service returns it. */
export type BugData = FullBugRow;

/** A comment as the bugs service returns it. */
export interface CommentData {
  id: number;
  bug_id: number;
  author_id: number;
  author_name: string;
  body: string;
  is_private: boolean;
  created_at: Date;
}

/** A history row as the bugs service returns it. */
export interface ChangeData {
  actor_id: number;
  actor_name: string;
  field: string;
  old_value: string | null;
  new_value: string | null;
  bug_version: number;
  changed_at: Date;
}

/** The people named in an answer, and how this viewer may name them. */
export class People {
  constructor(
    private readonly viewer: Viewer,
    private readonly known: Map<number, UserIdentity>,
  ) {}

  /** Loads the people with these ids. */
  static async load(db: Queryable, viewer: Viewer, ids: number[]): Promise<People> {
    return new People(viewer, await usersById(db, ids));
  }

  /** Whether this viewer may see the e-mail address of user `id`. */
  mayKnowEmail(id: number): boolean {
    return isStaff(this.viewer) || (this.viewer.kind === 'user' && this.viewer.id === id);
  }

  /** Bugzilla's login name for a user: the e-mail address, or the display name when it is not to be shown. */
  login(id: number | null, fallback = ''): string {
    if (id === null) return '';
    const u = this.known.get(id);
    if (!u) return fallback;
    return this.mayKnowEmail(id) ? u.email : u.name;
  }

  /** Bugzilla's `*_detail` object for a user. */
  detail(id: number, fallbackName = '') {
    const u = this.known.get(id);
    const name = u?.name ?? fallbackName;
    return {
      id,
      real_name: name,
      name: this.login(id, name),
      ...(u && this.mayKnowEmail(id) ? { email: u.email } : {}),
    };
  }
}

/** The user ids a bug names. */
export function peopleOf(b: BugData): number[] {
  return [b.reporter_id, ...(b.assignee_id === null ? [] : [b.assignee_id]), ...b.cc.map((u) => u.id)];
}

/** Fields of a bug Bugzilla returns only when asked for (include_fields `_all`, `_extra` or by name). */
export const BUG_EXTRA_FIELDS: ReadonlySet<string> = new Set(['description', 'comments']);

/** A bug in Bugzilla's shape (its default fields, plus the extra ones given). */
export function presentBug(
  b: BugData,
  people: People,
  openStatuses: ReadonlySet<string>,
  extra: { comments?: Record<string, unknown>[] | undefined; description?: boolean } = {},
): Record<string, unknown> {
  return {
    id: b.id,
    alias: [],
    summary: b.summary,
    status: b.status,
    resolution: b.resolution ?? '',
    is_open: openStatuses.has(b.status),
    is_confirmed: b.status !== 'UNCONFIRMED',
    product: b.product,
    component: b.component,
    version: b.version,
    severity: b.severity,
    priority: b.priority,
    creator: people.login(b.reporter_id, b.reporter_name),
    creator_detail: people.detail(b.reporter_id, b.reporter_name),
    assigned_to: people.login(b.assignee_id, b.assignee_name ?? ''),
    ...(b.assignee_id === null
      ? {}
      : { assigned_to_detail: people.detail(b.assignee_id, b.assignee_name ?? '') }),
    qa_contact: '',
    cc: b.cc.map((u) => people.login(u.id, u.name)),
    cc_detail: b.cc.map((u) => people.detail(u.id, u.name)),
    creation_time: bzDate(b.created_at),
    last_change_time: bzDate(b.changed_at),
    dupe_of: b.duplicate_of,
    groups: b.confidential ? ['confidential'] : [],
    keywords: [],
    blocks: [],
    depends_on: [],
    see_also: [],
    flags: [],
    url: '',
    whiteboard: '',
    op_sys: 'Unspecified',
    platform: 'Unspecified',
    target_milestone: '---',
    classification: 'Unclassified',
    deadline: null,
    is_cc_accessible: true,
    is_creator_accessible: true,
    // Bugzot's row version: send it back as update_token to have a stale change refused (mid-air).
    update_token: String(b.row_version),
    ...(extra.description ? { description: b.description } : {}),
    ...(extra.comments ? { comments: extra.comments } : {}),
  };
}

/**
 * A bug's comments in Bugzilla's shape. Bugzilla's comment 0 is the bug's description, so Bugzot's
 * description is presented as comment 0 (with id 0); the others count from 1 in the order shown.
 */
export function presentComments(b: BugData, comments: CommentData[], people: People) {
  const description = {
    id: 0,
    bug_id: b.id,
    attachment_id: null,
    count: 0,
    text: b.description,
    creator: people.login(b.reporter_id, b.reporter_name),
    author: people.login(b.reporter_id, b.reporter_name),
    time: bzDate(b.created_at),
    creation_time: bzDate(b.created_at),
    is_private: false,
    tags: [],
  };
  return [
    description,
    ...comments.map((c, i) => ({
      id: c.id,
      bug_id: c.bug_id,
      attachment_id: null,
      count: i + 1,
      text: c.body,
      creator: people.login(c.author_id, c.author_name),
      author: people.login(c.author_id, c.author_name),
      time: bzDate(c.created_at),
      creation_time: bzDate(c.created_at),
      is_private: c.is_private,
      tags: [],
    })),
  ];
}

/** Bugzot's history field names -> Bugzilla's API field names. */
const HISTORY_FIELD: Record<string, string> = {
  assignee: 'assigned_to',
  duplicate_of: 'dupe_of',
  confidential: 'groups',
};

/** One history row's change in Bugzilla's shape. */
export function presentChange(c: Pick<ChangeData, 'field' | 'old_value' | 'new_value'>) {
  if (c.field === 'confidential') {
    return {
      field_name: 'groups',
      removed: c.old_value === 'true' ? 'confidential' : '',
      added: c.new_value === 'true' ? 'confidential' : '',
    };
  }
  return {
    field_name: HISTORY_FIELD[c.field] ?? c.field,
    removed: c.old_value ?? '',
    added: c.new_value ?? '',
  };
}

/** A bug's history as Bugzilla groups it: one entry per change set (who, when, what). */
export function presentHistory(changes: ChangeData[], people: People) {
  const sets: { when: string; who: string; changes: ReturnType<typeof presentChange>[] }[] = [];
  let last: { version: number; actor: number } | undefined;
  for (const c of changes) {
    if (!last || last.version !== c.bug_version || last.actor !== c.actor_id) {
      sets.push({ when: bzDate(c.changed_at), who: people.login(c.actor_id, c.actor_name), changes: [] });
      last = { version: c.bug_version, actor: c.actor_id };
    }
    sets[sets.length - 1]!.changes.push(presentChange(c));
  }
  return sets;
}

/** A product as the products service returns it. */
export interface ProductData {
  id: number;
  name: string;
  description: string;
  is_released: boolean;
  versions: { id: number; name: string; is_released: boolean; sort_key: number }[];
  components: { id: number; name: string; description: string; default_assignee_id: number | null }[];
}

/** A product in Bugzilla's shape, with its components and versions (Bugzot has no milestones). */
export function presentProduct(p: ProductData, people: People) {
  return {
    id: p.id,
    name: p.name,
    description: p.description,
    is_active: true,
    default_milestone: '---',
    has_unconfirmed: true,
    classification: 'Unclassified',
    components: p.components.map((c, i) => ({
      id: c.id,
      name: c.name,
      description: c.description,
      default_assigned_to: people.login(c.default_assignee_id),
      default_qa_contact: '',
      sort_key: i,
      is_active: true,
      flag_types: { bug: [], attachment: [] },
    })),
    versions: p.versions.map((v) => ({ id: v.id, name: v.name, sort_key: v.sort_key, is_active: true })),
    milestones: [],
  };
}

/** A user in Bugzilla's shape: everything to staff and to themselves, the name only to others. */
export function presentUser(u: UserIdentity, people: People) {
  if (!people.mayKnowEmail(u.id)) return { id: u.id, real_name: u.name, name: u.name };
  return {
    id: u.id,
    real_name: u.name,
    name: u.email,
    email: u.email,
    can_login: !u.disabled,
    email_enabled: !u.disabled,
    login_denied_text: u.disabled ? 'This account is disabled.' : '',
    groups: [
      ...(u.kind === 'internal' || u.is_admin ? [{ id: 1, name: 'internal', description: 'Staff' }] : []),
      ...(u.is_admin ? [{ id: 2, name: 'admin', description: 'Administrators' }] : []),
    ],
    saved_searches: [],
    saved_reports: [],
  };
}
