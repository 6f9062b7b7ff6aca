-- Search: the full-text document of every bug, kept current by triggers in the transaction of the change
-- itself (whatever code path writes bugs or comments), trigram index on summaries, saved searches.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- One row per bug. doc: what every viewer of the bug may read — summary (weight A), description (B),
-- public comments (C). private_doc: private comments (C), NULL when there are none; staff search
-- doc || private_doc. last_comment_id: the newest comment the row includes (lets a trigger skip work
-- already done by another trigger of the same statement).
CREATE TABLE bug_text (
  bug_id          integer PRIMARY KEY REFERENCES bugs (id) ON DELETE CASCADE,
  doc             tsvector NOT NULL,
  private_doc     tsvector,
  last_comment_id integer NOT NULL DEFAULT 0
);
CREATE INDEX bug_text_doc_idx ON bug_text USING gin (doc);
-- Staff match doc || private_doc on the few bugs with private comments; this partial index serves that
-- arm of the query, bug_text_doc_idx the other.
CREATE INDEX bug_text_all_idx ON bug_text USING gin ((doc || private_doc)) WHERE private_doc IS NOT NULL;

-- Similar summaries while filing, and summary:word substring filters.
CREATE INDEX bugs_summary_trgm_idx ON bugs USING gin (summary gin_trgm_ops);
-- Sorting by creation date with keyset paging.
CREATE INDEX bugs_created_idx ON bugs (created_at, id);
-- Counts and facets read this narrow index alone (an index-only scan) rather than the wide bug rows: the
-- columns the filters and the visibility rule use, and the dates.
CREATE INDEX bugs_search_cover_idx ON bugs
  (status, product_id, version_id, confidential, reporter_id, severity, priority, component_id, assignee_id, id)
  INCLUDE (created_at, changed_at);
-- "Commenter" filters.
CREATE INDEX comments_author_bug_idx ON comments (author_id, bug_id);

-- Recomputes the documents of the given bugs from the bugs and comments tables.
CREATE FUNCTION bug_text_refresh(ids integer[]) RETURNS void LANGUAGE sql AS $$
  INSERT INTO bug_text (bug_id, doc, private_doc, last_comment_id)
  SELECT b.id,
         setweight(to_tsvector('english', b.summary), 'A')
           || setweight(to_tsvector('english', b.description), 'B')
           || setweight(to_tsvector('english', coalesce(c.public_text, '')), 'C'),
         CASE WHEN c.private_text IS NOT NULL
              THEN setweight(to_tsvector('english', c.private_text), 'C') END,
         coalesce(c.last_id, 0)
  FROM bugs b
  LEFT JOIN LATERAL (
    SELECT string_agg(body, ' ' ORDER BY id) FILTER (WHERE NOT is_private) AS public_text,
           string_agg(body, ' ' ORDER BY id) FILTER (WHERE is_private) AS private_text,
           max(id) AS last_id
    FROM comments WHERE bug_id = b.id
  ) c ON true
  WHERE b.id = ANY (ids)
  ON CONFLICT (bug_id) DO UPDATE
    SET doc = EXCLUDED.doc, private_doc = EXCLUDED.private_doc, last_comment_id = EXCLUDED.last_comment_id;
$$;

-- Locks the bugs (in id order, so two statements cannot deadlock on each other) and then recomputes
-- their documents. The lock makes a concurrent writer of the same bug wait until this transaction ends,
-- and its own recomputation (a new snapshot, taken after the wait) then includes what this one wrote:
-- no comment is lost between two transactions that did not lock the bug themselves.
CREATE FUNCTION bug_text_sync(ids integer[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF ids IS NULL OR cardinality(ids) = 0 THEN RETURN; END IF;
  PERFORM 1 FROM bugs WHERE id = ANY (ids) ORDER BY id FOR UPDATE;
  PERFORM bug_text_refresh(ids);
END $$;

-- Statement-level triggers with transition tables: one refresh per statement, so a bulk insert (the
-- seed inserts 50,000 bugs with their comments in one statement) costs one pass, not one per row.
CREATE FUNCTION bug_text_bugs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM bug_text_sync(array_agg(n.id))
  FROM new_bugs n WHERE NOT EXISTS (SELECT 1 FROM bug_text t WHERE t.bug_id = n.id);
  RETURN NULL;
END $$;
CREATE TRIGGER bug_text_bugs_insert AFTER INSERT ON bugs
  REFERENCING NEW TABLE AS new_bugs FOR EACH STATEMENT EXECUTE FUNCTION bug_text_bugs_inserted();

CREATE FUNCTION bug_text_bugs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM bug_text_sync(array_agg(n.id))
  FROM new_bugs n JOIN old_bugs o ON o.id = n.id
  WHERE n.summary IS DISTINCT FROM o.summary OR n.description IS DISTINCT FROM o.description;
  RETURN NULL;
END $$;
CREATE TRIGGER bug_text_bugs_update AFTER UPDATE ON bugs
  REFERENCING OLD TABLE AS old_bugs NEW TABLE AS new_bugs FOR EACH STATEMENT
  EXECUTE FUNCTION bug_text_bugs_updated();

-- New comments: refresh the bugs whose row does not include them yet (a bug inserted by the same
-- statement may already have been refreshed with its comments by the trigger above).
CREATE FUNCTION bug_text_comments_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM bug_text_sync(array_agg(x.bug_id))
  FROM (SELECT n.bug_id, max(n.id) AS last_id FROM new_comments n GROUP BY n.bug_id) x
  LEFT JOIN bug_text t ON t.bug_id = x.bug_id
  WHERE t.bug_id IS NULL OR t.last_comment_id < x.last_id;
  RETURN NULL;
END $$;
CREATE TRIGGER bug_text_comments_insert AFTER INSERT ON comments
  REFERENCING NEW TABLE AS new_comments FOR EACH STATEMENT EXECUTE FUNCTION bug_text_comments_inserted();

CREATE FUNCTION bug_text_comments_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM bug_text_sync(array_agg(DISTINCT x.bug_id))
  FROM (SELECT n.bug_id FROM new_comments n JOIN old_comments o ON o.id = n.id
        WHERE n.body IS DISTINCT FROM o.body OR n.is_private IS DISTINCT FROM o.is_private
           OR n.bug_id IS DISTINCT FROM o.bug_id
        UNION ALL
        SELECT o.bug_id FROM new_comments n JOIN old_comments o ON o.id = n.id
        WHERE n.bug_id IS DISTINCT FROM o.bug_id) x;
  RETURN NULL;
END $$;
CREATE TRIGGER bug_text_comments_update AFTER UPDATE ON comments
  REFERENCING OLD TABLE AS old_comments NEW TABLE AS new_comments FOR EACH STATEMENT
  EXECUTE FUNCTION bug_text_comments_updated();

CREATE FUNCTION bug_text_comments_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM bug_text_sync(array_agg(DISTINCT o.bug_id)) FROM old_comments o;
  RETURN NULL;
END $$;
CREATE TRIGGER bug_text_comments_delete AFTER DELETE ON comments
  REFERENCING OLD TABLE AS old_comments FOR EACH STATEMENT EXECUTE FUNCTION bug_text_comments_deleted();

-- Bugs that existed before this migration.
SELECT bug_text_refresh(array_agg(id)) FROM bugs;

-- Saved searches: a named query of the search language; shared ones are listed for everyone (each
-- runner still sees only the bugs they may see).
CREATE TABLE saved_searches (
  id         integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  owner_id   integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  query      text NOT NULL CHECK (length(query) BETWEEN 1 AND 2000),
  shared     boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX saved_searches_name_key ON saved_searches (owner_id, lower(name));
CREATE INDEX saved_searches_shared_idx ON saved_searches (id) WHERE shared;
