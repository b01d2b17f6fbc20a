-- Single-use terminal tickets (owned by the identity service). Only a hash of
-- each ticket is kept.
CREATE TABLE terminal_tickets (
  ticket_hash text PRIMARY KEY,
  user_id uuid NOT NULL,
  session_id uuid NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX terminal_tickets_expiry ON terminal_tickets (expires_at);
