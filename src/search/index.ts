/** The search module: the query language, search with facets and snippets, CSV, similar bugs, saved searches. */
export { type IdFilters, PRIORITIES, SEVERITIES } from './filter.ts';
export {
  FIELD_NAMES,
  HISTORY_FIELDS,
  type ParsedQuery,
  parseQuery,
  QueryError,
  quoteValue,
  SORT_COLUMNS,
  type Sort,
  type SortColumn,
  defaultDir,
} from './query.ts';
export { presentHit, searchRoutes } from './routes.ts';
export { CSV_COLUMNS, exportCsv } from './csv.ts';
export {
  deleteSavedSearch,
  getSavedSearch,
  listSavedSearches,
  type SavedSearch,
  saveSearch,
  updateSavedSearch,
} from './saved.ts';
export { type SearchInput, type SearchResult, type SearchRow, search, similarBugs } from './service.ts';
