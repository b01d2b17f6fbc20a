-- The warm pool: environments made before any session asks for one, with the
-- exam's setup already run. They have no session until one claims them (never
-- reused afterwards); pool_key says which exam environment they were made for.
ALTER TABLE execution_environments ALTER COLUMN session_id DROP NOT NULL;
ALTER TABLE execution_environments ADD COLUMN pool_key text;
CREATE INDEX environments_pool ON execution_environments (node, pool_key, created_at)
  WHERE session_id IS NULL AND status IN ('creating', 'running');
