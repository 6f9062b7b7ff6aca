-- API keys: a per-key rate limit, and keys an admin allowed to act on behalf of other users (src/users).
--   rate_limit_per_minute: NULL uses RATE_LIMIT_PER_MINUTE.
--   on_behalf_of: the key may send X-Bugzot-On-Behalf-Of (only an admin sets it).
ALTER TABLE api_keys
  ADD COLUMN rate_limit_per_minute integer CHECK (rate_limit_per_minute BETWEEN 1 AND 1000000),
  ADD COLUMN on_behalf_of boolean NOT NULL DEFAULT false;

-- The real actor behind a change made on behalf of someone else: actor_id / author_id / uploader_id
-- name the user acted for, via_user_id the key's owner (the bot) and via_key_id the key. Every write of
-- a delegated request runs in a transaction that sets bugzot.via_user_id and bugzot.via_key_id
-- (set_config(..., true): that transaction only), so these defaults fill them in on every path that
-- writes history, comments, events or attachments; elsewhere the settings are unset and they stay NULL.
ALTER TABLE bug_changes
  ADD COLUMN via_user_id integer REFERENCES users (id)
    DEFAULT nullif(current_setting('bugzot.via_user_id', true), '')::integer,
  ADD COLUMN via_key_id integer REFERENCES api_keys (id) ON DELETE SET NULL
    DEFAULT nullif(current_setting('bugzot.via_key_id', true), '')::integer;

ALTER TABLE comments
  ADD COLUMN via_user_id integer REFERENCES users (id)
    DEFAULT nullif(current_setting('bugzot.via_user_id', true), '')::integer,
  ADD COLUMN via_key_id integer REFERENCES api_keys (id) ON DELETE SET NULL
    DEFAULT nullif(current_setting('bugzot.via_key_id', true), '')::integer;

ALTER TABLE bug_events
  ADD COLUMN via_user_id integer REFERENCES users (id)
    DEFAULT nullif(current_setting('bugzot.via_user_id', true), '')::integer,
  ADD COLUMN via_key_id integer REFERENCES api_keys (id) ON DELETE SET NULL
    DEFAULT nullif(current_setting('bugzot.via_key_id', true), '')::integer;

ALTER TABLE attachments
  ADD COLUMN via_user_id integer REFERENCES users (id)
    DEFAULT nullif(current_setting('bugzot.via_user_id', true), '')::integer,
  ADD COLUMN via_key_id integer REFERENCES api_keys (id) ON DELETE SET NULL
    DEFAULT nullif(current_setting('bugzot.via_key_id', true), '')::integer;
