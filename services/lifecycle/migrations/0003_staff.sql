-- Staff: a proctor may end an attempt (termination_reason proctor_terminated),
-- and the room is listed per exam.
ALTER TABLE sessions DROP CONSTRAINT sessions_termination_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_termination_reason_check
  CHECK (termination_reason IN ('submitted', 'time_expired', 'admin', 'abandoned', 'environment_lost',
                                'proctor_terminated'));
CREATE INDEX sessions_by_exam ON sessions (exam_id, created_at DESC);
