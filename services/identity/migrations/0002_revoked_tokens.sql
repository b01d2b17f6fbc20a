-- Tokens revoked before their expiry (signed out). Only a hash of each is
-- kept, and only until the token would have expired anyway.
CREATE TABLE revoked_tokens (
  token_hash text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);
