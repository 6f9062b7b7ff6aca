-- Word searches in parallel: the text indexes also hold the bug's shard, (bug_id >> 16) & 3, as a
-- one-element array, so a search can be split into statements that each read only the matching bugs of
-- their shards, run at once on separate connections in one snapshot (src/search/repository.ts,
-- twinSearch; SEARCH_PARALLEL). Each shard is every fourth stripe of 65,536 consecutive bug numbers:
-- bug_text is written roughly in bug order, so a stripe's rows share heap pages, and a statement's
-- heap visits (one page per matching bug, the cost of a common word) are not shared with the others.
-- Four values allow up to four statements; two statements each take two values, which GIN answers as
-- one more posting list intersected with the word's, inside the same index scan.
--
-- The new indexes are built beside the old ones (searches keep using those meanwhile; the builds block
-- writes to bugs and comments, whose triggers write bug_text), then take their names.
CREATE INDEX bug_text_match_new_idx ON bug_text
  USING gin (doc, (ARRAY[status]), (ARRAY[product_id]), (ARRAY[(bug_id >> 16) & 3]));
CREATE INDEX bug_text_all_match_new_idx ON bug_text
  USING gin ((doc || private_doc), (ARRAY[status]), (ARRAY[product_id]), (ARRAY[(bug_id >> 16) & 3]))
  WHERE private_doc IS NOT NULL;
DROP INDEX bug_text_match_idx;
DROP INDEX bug_text_all_match_idx;
ALTER INDEX bug_text_match_new_idx RENAME TO bug_text_match_idx;
ALTER INDEX bug_text_all_match_new_idx RENAME TO bug_text_all_match_idx;
