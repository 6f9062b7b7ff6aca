-- Search at a million bugs: exact totals and facets without counting every bug on each search.
--
-- bug_counts holds how many bugs there are per (product, version, status, severity, confidential),
-- kept by statement-level triggers on bugs in the transaction of the change itself, so a reader's
-- snapshot sees a bug and its count together, or neither: the counts are exact, never eventually right.
-- A search whose filters use only these columns sums these rows (some thousands) instead of the bugs
-- (src/search/repository.ts); the visibility predicate is applied to each row as to a bug with those
-- facts and no reporter or CC, and the few bugs a viewer sees only as reporter or CC are added from
-- the bugs themselves (the index below).
CREATE TABLE bug_counts (
  product_id   integer NOT NULL,
  version_id   integer NOT NULL,
  status       text NOT NULL,
  severity     text NOT NULL,
  confidential boolean NOT NULL,
  n            integer NOT NULL,
  PRIMARY KEY (version_id, status, severity, confidential, product_id)
);

-- One upsert per statement: the net change per group (+1 per new row, -1 per old row), groups whose
-- count did not change (a comment bumps row_version and changed_at only) left alone. Groups are
-- written in key order, so two statements lock the rows they share in the same order.
CREATE FUNCTION bug_counts_bugs_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO bug_counts AS c (product_id, version_id, status, severity, confidential, n)
    SELECT product_id, version_id, status, severity, confidential, count(*)::int
    FROM new_bugs GROUP BY 1, 2, 3, 4, 5 ORDER BY 2, 3, 4, 5, 1
    ON CONFLICT (version_id, status, severity, confidential, product_id) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO bug_counts AS c (product_id, version_id, status, severity, confidential, n)
    SELECT product_id, version_id, status, severity, confidential, sum(d)::int
    FROM (SELECT product_id, version_id, status, severity, confidential, 1 AS d FROM new_bugs
          UNION ALL
          SELECT product_id, version_id, status, severity, confidential, -1 FROM old_bugs) x
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(d) <> 0 ORDER BY 2, 3, 4, 5, 1
    ON CONFLICT (version_id, status, severity, confidential, product_id) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSE
    INSERT INTO bug_counts AS c (product_id, version_id, status, severity, confidential, n)
    SELECT product_id, version_id, status, severity, confidential, -count(*)::int
    FROM old_bugs GROUP BY 1, 2, 3, 4, 5 ORDER BY 2, 3, 4, 5, 1
    ON CONFLICT (version_id, status, severity, confidential, product_id) DO UPDATE SET n = c.n + EXCLUDED.n;
  END IF;
  RETURN NULL;
END $$;
-- Named to fire after bug_text_bugs_* (triggers of one event fire in name order): the counted rows are
-- locked as late as possible before the commit, so concurrent writers wait on each other the least.
CREATE TRIGGER bugs_count_insert AFTER INSERT ON bugs
  REFERENCING NEW TABLE AS new_bugs FOR EACH STATEMENT EXECUTE FUNCTION bug_counts_bugs_changed();
CREATE TRIGGER bugs_count_update AFTER UPDATE ON bugs
  REFERENCING OLD TABLE AS old_bugs NEW TABLE AS new_bugs FOR EACH STATEMENT
  EXECUTE FUNCTION bug_counts_bugs_changed();
CREATE TRIGGER bugs_count_delete AFTER DELETE ON bugs
  REFERENCING OLD TABLE AS old_bugs FOR EACH STATEMENT EXECUTE FUNCTION bug_counts_bugs_changed();

CREATE FUNCTION bug_counts_bugs_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM bug_counts;
  RETURN NULL;
END $$;
CREATE TRIGGER bugs_count_truncate AFTER TRUNCATE ON bugs
  FOR EACH STATEMENT EXECUTE FUNCTION bug_counts_bugs_truncated();

-- Bugs that existed before this migration (the triggers above already hold bugs' write lock until
-- this transaction commits, so no bug is counted twice or missed).
INSERT INTO bug_counts (product_id, version_id, status, severity, confidential, n)
SELECT product_id, version_id, status, severity, confidential, count(*)::int
FROM bugs GROUP BY 1, 2, 3, 4, 5;

-- Bugs an external user sees only as their reporter: the count adds them from this index alone (an
-- index-only scan), and "reporter:me" lists read it newest first. It does what bugs_reporter_idx did.
CREATE INDEX bugs_reporter_search_idx ON bugs (reporter_id, id)
  INCLUDE (confidential, version_id, product_id, status, severity);
DROP INDEX bugs_reporter_idx;
-- "assignee:me" (a developer's own list) likewise, from the index alone. It does what bugs_assignee_idx did.
CREATE INDEX bugs_assignee_search_idx ON bugs (assignee_id, id)
  INCLUDE (status, product_id, version_id, severity, confidential, reporter_id);
DROP INDEX bugs_assignee_idx;

-- The text table becomes the twin of the bugs a text search reads: beside the documents it holds the
-- bug's columns that the visibility rule, the counted filters (product, version, status, severity,
-- confidential) and the facets use, copied in the transaction of every change. A search with words and
-- such filters then reads the matching bug_text rows once, without a join to bugs, for its page, exact
-- total and facets (src/search/repository.ts, twinSearch).
-- title: the summary's own vector (weight A), small and stored in the row: relevance puts bugs whose
-- summary has the words first without reading their documents.
ALTER TABLE bug_text
  ADD COLUMN product_id   integer,
  ADD COLUMN version_id   integer,
  ADD COLUMN status       text,
  ADD COLUMN severity     text,
  ADD COLUMN confidential boolean,
  ADD COLUMN reporter_id  integer,
  ADD COLUMN title        tsvector;

CREATE OR REPLACE FUNCTION bug_text_refresh(ids integer[]) RETURNS void LANGUAGE sql AS $$
  INSERT INTO bug_text (bug_id, doc, private_doc, last_comment_id, product_id, version_id, status, severity,
                        confidential, reporter_id, title)
  SELECT b.id,
         v.title || v.body || setweight(to_tsvector('english', coalesce(c.public_text, '')), 'C'),
         CASE WHEN c.private_text IS NOT NULL
              THEN setweight(to_tsvector('english', c.private_text), 'C') END,
         coalesce(c.last_id, 0),
         b.product_id, b.version_id, b.status, b.severity, b.confidential, b.reporter_id,
         v.title
  FROM bugs b
  CROSS JOIN LATERAL (
    SELECT setweight(to_tsvector('english', b.summary), 'A') AS title,
           setweight(to_tsvector('english', b.description), 'B') AS body
  ) v
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
        reporter_id = EXCLUDED.reporter_id, title = EXCLUDED.title;
$$;

-- A changed summary or description recomputes the documents (and every copied column); any other
-- change of a copied column is copied as it is, in the same statement's trigger.
CREATE OR REPLACE FUNCTION bug_text_bugs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE bug_text t
  SET product_id = n.product_id, version_id = n.version_id, status = n.status, severity = n.severity,
      confidential = n.confidential, reporter_id = n.reporter_id
  FROM new_bugs n JOIN old_bugs o ON o.id = n.id
  WHERE t.bug_id = n.id
    AND (n.product_id, n.version_id, n.status, n.severity, n.confidential, n.reporter_id)
        IS DISTINCT FROM (o.product_id, o.version_id, o.status, o.severity, o.confidential, o.reporter_id);
  PERFORM bug_text_sync(array_agg(n.id))
  FROM new_bugs n JOIN old_bugs o ON o.id = n.id
  WHERE n.summary IS DISTINCT FROM o.summary OR n.description IS DISTINCT FROM o.description;
  RETURN NULL;
END $$;

SELECT bug_text_refresh(array_agg(id)) FROM bugs;
ALTER TABLE bug_text
  ALTER COLUMN product_id SET NOT NULL,
  ALTER COLUMN version_id SET NOT NULL,
  ALTER COLUMN status SET NOT NULL,
  ALTER COLUMN severity SET NOT NULL,
  ALTER COLUMN confidential SET NOT NULL,
  ALTER COLUMN reporter_id SET NOT NULL,
  ALTER COLUMN title SET NOT NULL;
