-- The candidate's terminal connections: how many are open now, when the
-- candidate was last seen (a connect or a disconnect), and each event in the
-- session's history.
ALTER TABLE sessions
  ADD COLUMN terminals_open integer NOT NULL DEFAULT 0 CHECK (terminals_open >= 0),
  ADD COLUMN last_seen_at timestamptz;
ALTER TABLE session_transitions DROP CONSTRAINT session_transitions_kind_check;
ALTER TABLE session_transitions ADD CONSTRAINT session_transitions_kind_check
  CHECK (kind IN ('transition', 'extend', 'message', 'connect', 'disconnect'));
