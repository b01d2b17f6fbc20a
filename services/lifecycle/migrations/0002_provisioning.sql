-- The provisioner's bookkeeping: a short lease per claim (so that a crashed
-- replica's work is picked up again), attempts, and the backoff of the next try.
ALTER TABLE sessions
  ADD COLUMN provision_attempts integer NOT NULL DEFAULT 0,
  ADD COLUMN provision_lease_until timestamptz,
  ADD COLUMN provision_next_at timestamptz;
CREATE INDEX sessions_to_provision ON sessions (created_at)
  WHERE auto_provision AND state IN ('created', 'initializing');
