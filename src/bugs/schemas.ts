/** Request schemas of the bugs routes (the single source for validation and, later, the OpenAPI document). */
import { type Static, Type } from 'typebox';
import { Id, Nullable } from '../platform/http.ts';
import { PRIORITIES, SEVERITIES } from './service.ts';

const Summary = Type.String({ minLength: 1, maxLength: 255 });
const Description = Type.String({ maxLength: 65535 });
const Severity = Type.Union(SEVERITIES.map((s) => Type.Literal(s)));
const Priority = Type.Union(PRIORITIES.map((s) => Type.Literal(s)));
const StatusName = Type.String({ pattern: '^[A-Z_]{2,32}$' });
const CommentBody = Type.String({ minLength: 1, maxLength: 65535 });
const UserIds = Type.Array(Id, { maxItems: 100 });

export const NewBugBody = Type.Object(
  {
    product_id: Id,
    version_id: Id,
    component_id: Id,
    summary: Summary,
    description: Type.Optional(Description),
    severity: Type.Optional(Severity),
    priority: Type.Optional(Priority),
    status: Type.Optional(StatusName),
    assignee_id: Type.Optional(Nullable(Id)),
    cc: Type.Optional(UserIds),
    confidential: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type NewBugBody = Static<typeof NewBugBody>;

export const BugPatchBody = Type.Object(
  {
    summary: Type.Optional(Summary),
    description: Type.Optional(Description),
    product_id: Type.Optional(Id),
    version_id: Type.Optional(Id),
    component_id: Type.Optional(Id),
    severity: Type.Optional(Severity),
    priority: Type.Optional(Priority),
    assignee_id: Type.Optional(Nullable(Id)),
    status: Type.Optional(StatusName),
    resolution: Type.Optional(Nullable(StatusName)),
    duplicate_of: Type.Optional(Nullable(Id)),
    confidential: Type.Optional(Type.Boolean()),
    cc: Type.Optional(
      Type.Object(
        { add: Type.Optional(UserIds), remove: Type.Optional(UserIds) },
        { additionalProperties: false },
      ),
    ),
    comment: Type.Optional(
      Type.Object(
        { body: CommentBody, is_private: Type.Optional(Type.Boolean()) },
        { additionalProperties: false },
      ),
    ),
    row_version: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
export type BugPatchBody = Static<typeof BugPatchBody>;

export const NewCommentBody = Type.Object(
  { body: CommentBody, is_private: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
export type NewCommentBody = Static<typeof NewCommentBody>;

/** Comma-separated or repeated list of ids in a query string. */
const IdList = Type.Array(Type.String({ pattern: '^\\d{1,10}(,\\d{1,10})*$' }), { maxItems: 50 });

export const BugListQuery = Type.Object(
  {
    product_id: Type.Optional(IdList),
    version_id: Type.Optional(IdList),
    component_id: Type.Optional(IdList),
    status: Type.Optional(
      Type.Array(Type.String({ pattern: '^[A-Z_]{2,32}(,[A-Z_]{2,32})*$' }), { maxItems: 20 }),
    ),
    reporter_id: Type.Optional(IdList),
    assignee_id: Type.Optional(IdList),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
    order: Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'desc' }),
  },
  { additionalProperties: false },
);
export type BugListQuery = Static<typeof BugListQuery>;

// Response schemas: they document the answers and let Fastify serialise them fast, writing only the
// properties listed here (nothing unlisted can leak out by accident).
const Ref = Type.Object({ id: Type.Integer(), name: Type.String() });
const Timestamp = Type.String({ format: 'date-time' });

export const BugSummaryResponse = Type.Object({
  id: Type.Integer(),
  summary: Type.String(),
  product: Ref,
  version: Ref,
  component: Ref,
  status: Type.String(),
  resolution: Nullable(Type.String()),
  severity: Type.String(),
  priority: Type.String(),
  reporter: Ref,
  assignee: Nullable(Ref),
  confidential: Type.Boolean(),
  duplicate_of: Nullable(Type.Integer()),
  created_at: Timestamp,
  changed_at: Timestamp,
  row_version: Type.Integer(),
});

export const BugResponse = Type.Object({
  ...BugSummaryResponse.properties,
  description: Type.String(),
  cc: Type.Array(Ref),
  actions: Type.Optional(
    Type.Object({
      statuses: Type.Array(Type.String()),
      resolutions: Type.Array(Type.String()),
      can_edit_fields: Type.Union([Type.Literal('all'), Type.Array(Type.String())]),
      can_comment: Type.Boolean(),
    }),
  ),
});

export const CommentResponse = Type.Object({
  id: Type.Integer(),
  bug_id: Type.Integer(),
  author: Ref,
  via: Type.Optional(
    Type.Object(Ref.properties, {
      description: 'the real actor: the bot whose key wrote this on behalf of the author',
    }),
  ),
  body: Type.String(),
  is_private: Type.Boolean(),
  created_at: Timestamp,
});

export const ChangeResponse = Type.Object({
  id: Type.Integer(),
  who: Ref,
  via: Type.Optional(
    Type.Object(Ref.properties, {
      description: 'the real actor: the bot whose key made this change on behalf of who',
    }),
  ),
  when: Timestamp,
  field: Type.String(),
  removed: Nullable(Type.String()),
  added: Nullable(Type.String()),
});

export const BugListResponse = Type.Object({
  bugs: Type.Array(BugSummaryResponse),
  next_cursor: Nullable(Type.String()),
});
