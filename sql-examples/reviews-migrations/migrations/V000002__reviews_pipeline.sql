-- reviews -> reviews_clean -> enriched_reviews -> unhappy_vips (see ../../reviews.sql).
-- A SET lasts for this file only: read the topics from their beginning.
SET 'auto.offset.reset' = 'earliest';

CREATE STREAM reviews_clean AS SELECT * FROM reviews WHERE id IS NOT NULL;

CREATE STREAM enriched_reviews AS
  SELECT r.id AS id, r.userid AS userid, r.rating AS rating, r.text AS text,
         u.name AS name, u.status AS status
  FROM reviews_clean r INNER JOIN users u ON r.userid = u.userid;

CREATE STREAM unhappy_vips AS
  SELECT * FROM enriched_reviews WHERE rating < 3 AND status = 'Platinum';
