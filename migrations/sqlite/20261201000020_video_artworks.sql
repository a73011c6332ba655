-- Artworks live in the catalog (DESIGN §6): each title's artwork ids, in the order
-- `PUT /v1/videos/{id}` gave them, as a JSON array in TEXT like `genres`. Billboard
-- reads them from here; its own table, which held them until now, is folded in and
-- dropped, so there is one source of truth. (SQLite has no conditional DDL; the
-- billboard migration before this one always created the table.)

ALTER TABLE videos ADD COLUMN artworks TEXT NOT NULL DEFAULT '[]';

UPDATE videos SET artworks = (
    SELECT json_group_array(artwork_id)
    FROM (SELECT artwork_id FROM billboard_artworks a WHERE a.video_id = videos.video_id ORDER BY artwork_id)
)
WHERE EXISTS (SELECT 1 FROM billboard_artworks a WHERE a.video_id = videos.video_id);

DROP TABLE IF EXISTS billboard_artworks;
