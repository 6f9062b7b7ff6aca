-- Search at a million bugs: a word search with product or status filters visits only the documents that
-- pass them, and relevance no longer needs a separate summary vector.
--
-- The text indexes also hold each bug's status and product (bug_text's copies, migration 007) as
-- one-element arrays, so `doc @@ q AND ARRAY[status] && $statuses AND ARRAY[product_id] && $products`
-- is answered inside one GIN scan: the rare word's posting list is intersected with the filters' in the
-- index, and the heap is read only for the bugs that pass all of them (src/search/filter.ts, textConds).
-- A word alone uses the same index exactly as it used bug_text_doc_idx. Arrays rather than btree_gin:
-- GIN's own array_ops answer `&&` of several values in one scan (btree_gin would scan once per value of
-- `= ANY`), and need no extension, on PostgreSQL and PGlite alike.
--
-- At a million bugs `bugzot migrate` applied this in 91 s (2-core bench machine at load ~10,
-- maintenance_work_mem = 512MB; the GIN builds take longer with the default 64MB). Searches keep working
-- on the old indexes while the new ones are built (the builds block only writes to bugs and comments,
-- whose triggers write bug_text); the old indexes are dropped last, which locks bug_text only briefly.
CREATE INDEX bug_text_match_idx ON bug_text USING gin (doc, (ARRAY[status]), (ARRAY[product_id]));
CREATE INDEX bug_text_all_match_idx ON bug_text USING gin ((doc || private_doc), (ARRAY[status]), (ARRAY[product_id]))
  WHERE private_doc IS NOT NULL;

-- Relevance tiers now test the document with weighted queries (`doc @@ 'crash':A` is "crash" in the
-- summary, `:AB` in summary or description), so the summary's own vector is no longer read or kept.
-- Dropping the column is a catalogue change; rows lose its bytes as they are next written.
CREATE OR REPLACE FUNCTION bug_text_refresh(ids integer[]) RETURNS void LANGUAGE sql AS $$
  INSERT INTO bug_text (bug_id, doc, private_doc, last_comment_id, product_id, version_id, status, severity,
                        confidential, reporter_id)
  SELECT b.id,
         setweight(to_tsvector('english', b.summary), 'A')
           || setweight(to_tsvector('english', b.description), 'B')
           || setweight(to_tsvector('english', coalesce(c.public_text, '')), 'C'),
         CASE WHEN c.private_text IS NOT NULL
              THEN setweight(to_tsvector('english', c.private_text), 'C') END,
         coalesce(c.last_id, 0),
         b.product_id, b.version_id, b.status, b.severity, b.confidential, b.reporter_id
  FROM bugs b
  LEFT JOIN LATERAL (
    SELECT string_agg(body, ' ' ORDER BY id) FILTER (WHERE NOT is_private) AS public_text,
           string_agg(body, ' ' ORDER BY id) FILTER (WHERE is_private) AS private_text,
           max(id) AS last_id
    FROM comments WHERE bug_id = b.id
  ) c ON true
  WHERE b.id = ANY (ids)
  ON CONFLICT (bug_id) DO UPDATE
    SET doc = EXCLUDED.doc, private_doc = EXCLUDED.private_doc, last_comment_id = EXCLUDED.last_comment_id,
        product_id = EXCLUDED.product_id, version_id = EXCLUDED.version_id, status = EXCLUDED.status,
        severity = EXCLUDED.severity, confidential = EXCLUDED.confidential,
        reporter_id = EXCLUDED.reporter_id;
$$;
ALTER TABLE bug_text DROP COLUMN title;
DROP INDEX bug_text_doc_idx;
DROP INDEX bug_text_all_idx;
