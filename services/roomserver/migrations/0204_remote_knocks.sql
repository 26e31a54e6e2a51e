-- 0204_remote_knocks: a row of remote_invites may also be a knock of a
-- local user on a room this server is not in (federation make_knock and
-- send_knock through a resident server): membership says which, and via
-- names the resident server the knock went through, which a rescinding
-- leave (make_leave, send_leave) goes through too. An invite that arrives
-- for the same room and user replaces the knock (the knock was accepted).
-- Rows written before this migration, and by servers that do not know
-- the columns, are invites.
ALTER TABLE remote_invites ADD COLUMN IF NOT EXISTS membership {{text}} NOT NULL DEFAULT 'invite';
ALTER TABLE remote_invites ADD COLUMN IF NOT EXISTS via {{text}} NOT NULL DEFAULT '';
