-- Usage statistics without personal data: page views per day, unique visitors per day counted by a hash of
-- (address, user agent) with a salt that changes every day and is deleted once the day is over (so a hash cannot
-- be traced back to an address afterwards), and the users active each day.
CREATE TABLE stats_salts (
  day  date PRIMARY KEY,
  salt bytea NOT NULL
);

CREATE TABLE stats_days (
  day        date PRIMARY KEY,
  page_views bigint NOT NULL DEFAULT 0
);

CREATE TABLE stats_visitors (
  day     date NOT NULL,
  visitor bytea NOT NULL,
  PRIMARY KEY (day, visitor)
);

CREATE TABLE stats_active_users (
  day     date NOT NULL,
  user_id integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  PRIMARY KEY (day, user_id)
);

