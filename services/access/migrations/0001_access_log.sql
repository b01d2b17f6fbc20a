-- Every access decision, granted or denied (owned by the access service).
-- Ids are kept as requested (even malformed, truncated), for operators.
CREATE TABLE access_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL,
  session_id text NOT NULL,
  user_id text NOT NULL,
  access_type text NOT NULL,
  granted boolean NOT NULL,
  denial_reason text,
  client_ip text NOT NULL DEFAULT ''
);
CREATE INDEX access_log_by_session ON access_log (session_id, id DESC);
