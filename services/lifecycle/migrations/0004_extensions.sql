-- More time (staff): what a session was given in all, and each extension in
-- its history next to the transitions.
ALTER TABLE sessions ADD COLUMN extended_seconds bigint NOT NULL DEFAULT 0 CHECK (extended_seconds >= 0);
ALTER TABLE session_transitions
  ADD COLUMN kind text NOT NULL DEFAULT 'transition' CHECK (kind IN ('transition', 'extend')),
  ADD COLUMN seconds bigint;
