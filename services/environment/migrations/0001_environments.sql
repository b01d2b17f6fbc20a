-- Execution environments (owned by the environment service): one live per
-- session, never reused; each attempt is a row of its own.
CREATE TABLE execution_environments (
  environment_id uuid PRIMARY KEY,
  session_id uuid NOT NULL,
  pod_name text NOT NULL,
  pod_namespace text NOT NULL,
  driver text NOT NULL,
  node text NOT NULL,             -- the machine a local sandbox lives on
  host_uid integer,               -- local driver: the sandbox's own unprivileged uid
  status text NOT NULL
    CHECK (status IN ('pending', 'creating', 'running', 'terminating', 'destroyed', 'error')),
  error_reason text,
  created_at timestamptz NOT NULL,
  ready_at timestamptz,
  destroyed_at timestamptz,
  updated_at timestamptz NOT NULL
);

CREATE UNIQUE INDEX environments_one_live_per_session ON execution_environments (session_id)
  WHERE status IN ('pending', 'creating', 'running', 'terminating');
CREATE UNIQUE INDEX environments_live_pod_name ON execution_environments (pod_namespace, pod_name)
  WHERE status IN ('pending', 'creating', 'running', 'terminating');
CREATE UNIQUE INDEX environments_live_host_uid ON execution_environments (node, host_uid)
  WHERE status IN ('pending', 'creating', 'running', 'terminating');
CREATE INDEX environments_by_session ON execution_environments (session_id, created_at DESC);
CREATE INDEX environments_by_status ON execution_environments (status, updated_at);
