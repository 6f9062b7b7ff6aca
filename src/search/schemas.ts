/** Request and response schemas of the search routes (validation and the OpenAPI document). */
import { type Static, Type } from 'typebox';
import { Id, Nullable } from '../platform/http.ts';
import { SORT_COLUMNS } from './query.ts';

const IdList = Type.Array(Type.String({ pattern: '^\\d{1,10}(,\\d{1,10})*$' }), { maxItems: 50 });
const Q = Type.String({
  maxLength: 2000,
  default: '',
  description:
    'The query in the search language (see /search/help), e.g. `crash status:NEW,ASSIGNED sort:changed`.',
});
const SortColumn = Type.Union(
  SORT_COLUMNS.map((c) => Type.Literal(c)),
  { description: 'Overrides the sort: of the query.' },
);
const Dir = Type.Union([Type.Literal('asc'), Type.Literal('desc')]);

const filterParams = {
  q: Q,
  product_id: Type.Optional(IdList),
  version_id: Type.Optional(IdList),
  component_id: Type.Optional(IdList),
  status: Type.Optional(
    Type.Array(Type.String({ pattern: '^[A-Z_]{2,32}(,[A-Z_]{2,32})*$' }), { maxItems: 20 }),
  ),
  reporter_id: Type.Optional(IdList),
  assignee_id: Type.Optional(IdList),
  sort: Type.Optional(SortColumn),
  dir: Type.Optional(Dir),
};

export const SearchQuery = Type.Object(
  {
    ...filterParams,
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 500 })),
    facets: Type.Boolean({ default: true, description: 'Counts per status and per product.' }),
  },
  { additionalProperties: false },
);
export type SearchQuery = Static<typeof SearchQuery>;

export const ExportQuery = Type.Object(filterParams, { additionalProperties: false });
export type ExportQuery = Static<typeof ExportQuery>;

const Ref = Type.Object({ id: Type.Integer(), name: Type.String() });
const Timestamp = Type.String({ format: 'date-time' });

export const SearchHit = Type.Object({
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
  rank: Nullable(
    Type.Number({
      description:
        'Text relevance: 3 when the summary has the words, 2 the description, 1 elsewhere (comments); null without text.',
    }),
  ),
  snippet: Nullable(
    Type.String({ description: 'HTML excerpt of the matching text: escaped, matches in <mark>.' }),
  ),
});

export const SearchResponse = Type.Object({
  bugs: Type.Array(SearchHit),
  total: Type.Integer({ description: 'Exact number of matching bugs you may see.' }),
  facets: Type.Optional(
    Type.Object({
      status: Type.Array(Type.Object({ name: Type.String(), count: Type.Integer() })),
      product: Type.Array(Type.Object({ id: Type.Integer(), name: Type.String(), count: Type.Integer() })),
    }),
  ),
  next_cursor: Nullable(Type.String()),
  sort: Type.Object({ column: Type.String(), dir: Type.String() }),
  jump_to: Nullable(Type.Integer({ description: 'The query is this bug number: open it.' })),
});

export const SimilarQuery = Type.Object(
  { product_id: Id, summary: Type.String({ maxLength: 255 }) },
  { additionalProperties: false },
);
export type SimilarQuery = Static<typeof SimilarQuery>;

export const SimilarResponse = Type.Object({
  bugs: Type.Array(
    Type.Object({
      id: Type.Integer(),
      summary: Type.String(),
      status: Type.String(),
      resolution: Nullable(Type.String()),
      score: Type.Number(),
    }),
  ),
});

const Name = Type.String({ minLength: 1, maxLength: 100 });
const SavedQuery = Type.String({ minLength: 1, maxLength: 2000 });

export const NewSavedSearchBody = Type.Object(
  { name: Name, query: SavedQuery, shared: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
export type NewSavedSearchBody = Static<typeof NewSavedSearchBody>;

export const SavedSearchPatchBody = Type.Object(
  { name: Type.Optional(Name), query: Type.Optional(SavedQuery), shared: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
export type SavedSearchPatchBody = Static<typeof SavedSearchPatchBody>;

export const SavedSearchResponse = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  query: Type.String(),
  shared: Type.Boolean(),
  owner: Ref,
  mine: Type.Boolean(),
  created_at: Timestamp,
  updated_at: Timestamp,
});
