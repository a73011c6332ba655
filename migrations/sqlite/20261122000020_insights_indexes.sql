-- Insights reads one title's cells over a time range; the same covering index as on
-- Postgres (SQLite has no INCLUDE, so the counts are trailing key columns), so those
-- reads never touch the table itself.
CREATE INDEX IF NOT EXISTS cell_counts_title_cover
    ON cell_counts (video_id, epoch_start_ms, country, device, canvas, impressions, plays);
