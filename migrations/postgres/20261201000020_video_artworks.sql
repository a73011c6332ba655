-- Artworks live in the catalog (DESIGN §6): each title's artwork ids, in the order
-- `PUT /v1/videos/{id}` gave them, as a JSON array in TEXT like `genres`. Billboard
-- reads them from here; its own table, which held them until now, is folded in and
-- dropped, so there is one source of truth.

ALTER TABLE videos ADD COLUMN IF NOT EXISTS artworks TEXT NOT NULL DEFAULT '[]';

DO $$
BEGIN
    IF to_regclass('billboard_artworks') IS NOT NULL THEN
        UPDATE videos v SET artworks = a.ids
        FROM (
            SELECT video_id, json_agg(artwork_id ORDER BY artwork_id)::text AS ids
            FROM billboard_artworks GROUP BY video_id
        ) a
        WHERE a.video_id = v.video_id AND v.artworks = '[]';
        DROP TABLE billboard_artworks;
    END IF;
END
$$;
