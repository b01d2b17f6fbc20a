-- Staff messages to a candidate, in the session's history (the text as its reason).
ALTER TABLE session_transitions DROP CONSTRAINT session_transitions_kind_check;
ALTER TABLE session_transitions ADD CONSTRAINT session_transitions_kind_check
  CHECK (kind IN ('transition', 'extend', 'message'));
