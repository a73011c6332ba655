-- Backfill takes a play out of the unattributed sets when it finds the play's impression
-- on the late topic (store::Facts::retract_unattributed); it looks plays up by request.
CREATE INDEX IF NOT EXISTS unattributed_members_request ON unattributed_members (request_id, video_id);
