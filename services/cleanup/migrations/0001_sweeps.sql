-- Every sweep: when, what it looked at, what it cleaned (owned by the cleanup service).
CREATE TABLE cleanup_sweeps (
  id bigserial PRIMARY KEY,
  started_at timestamptz NOT NULL,
  completed_at timestamptz NOT NULL,
  dry_run boolean NOT NULL,
  sessions_checked integer NOT NULL,
  sessions_cleaned integer NOT NULL,
  cleaned_session_ids text[] NOT NULL,
  actions jsonb NOT NULL,
  replica text NOT NULL
);
CREATE INDEX cleanup_sweeps_by_time ON cleanup_sweeps (started_at);
