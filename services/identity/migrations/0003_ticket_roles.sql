-- A terminal ticket carries its holder's roles: a proctor's browser opens the
-- read-only view of a terminal with one (a browser cannot send a token there).
ALTER TABLE terminal_tickets ADD COLUMN roles text[] NOT NULL DEFAULT '{}';
