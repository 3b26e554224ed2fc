-- How many reviews each user wrote, for pull queries.
SET 'auto.offset.reset' = 'earliest';

CREATE TABLE reviews_per_user AS
  SELECT userid, COUNT(*) AS reviews FROM reviews_clean GROUP BY userid;
