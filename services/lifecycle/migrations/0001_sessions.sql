-- Sessions and their transition history (owned by the lifecycle service).
CREATE TABLE sessions (
  session_id uuid PRIMARY KEY,
  user_id uuid NOT NULL,
  exam_id text NOT NULL,
  state text NOT NULL
    CHECK (state IN ('created', 'initializing', 'ready', 'running', 'terminated', 'failed')),
  previous_state text,
  termination_reason text
    CHECK (termination_reason IN ('submitted', 'time_expired', 'admin', 'abandoned', 'environment_lost')),
  failure_class text CHECK (failure_class IN ('init', 'runtime', 'access', 'infra')),
  reason text,
  auto_provision boolean NOT NULL DEFAULT false,
  duration_seconds bigint NOT NULL CHECK (duration_seconds > 0),
  provisioning_timeout_seconds bigint NOT NULL CHECK (provisioning_timeout_seconds > 0),
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,  -- when the session entered its current state
  initializing_at timestamptz,
  ready_at timestamptz,
  started_at timestamptz,           -- entered running: the exam clock starts
  terminated_at timestamptz,        -- entered terminated or failed
  deadline timestamptz,             -- started_at + duration, stored so every replica agrees
  version bigint NOT NULL DEFAULT 1,
  CHECK (state <> 'failed' OR (reason IS NOT NULL AND failure_class IS NOT NULL)),
  CHECK (state <> 'terminated' OR termination_reason IS NOT NULL),
  CHECK (state <> 'running' OR deadline IS NOT NULL)
);

-- At most one non-terminal session per user, enforced here and nowhere else.
CREATE UNIQUE INDEX sessions_one_active_per_user ON sessions (user_id)
  WHERE state NOT IN ('terminated', 'failed');
CREATE INDEX sessions_by_user ON sessions (user_id, created_at DESC);
CREATE INDEX sessions_due ON sessions (deadline) WHERE state = 'running';
CREATE INDEX sessions_waiting ON sessions (state, updated_at) WHERE state IN ('created', 'initializing', 'ready');

CREATE TABLE session_transitions (
  id bigserial PRIMARY KEY,
  session_id uuid NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
  from_state text,  -- NULL for the creation
  to_state text NOT NULL,
  reason text,
  termination_reason text,
  failure_class text,
  actor text NOT NULL,
  at timestamptz NOT NULL
);
CREATE INDEX session_transitions_by_session ON session_transitions (session_id, id);
