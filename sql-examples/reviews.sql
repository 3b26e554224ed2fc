-- The reviews pipeline: reviews -> reviews_clean -> enriched_reviews -> unhappy_vips.
-- Run it against a server:  eddy shell http://localhost:8088 -f sql-examples/reviews.sql
-- or:  curl -s -X POST localhost:8088/ksql -H 'Content-Type: application/json' \
--        --data "$(jq -Rs '{ksql: .}' sql-examples/reviews.sql)"

-- Read the topics from their beginning, so records produced before a query starts count.
SET 'auto.offset.reset' = 'earliest';

CREATE STREAM reviews (id INT KEY, userid INT, rating INT, text VARCHAR)
  WITH (KAFKA_TOPIC='reviews', VALUE_FORMAT='JSON');

CREATE TABLE users (userid INT PRIMARY KEY, name VARCHAR, email VARCHAR, status VARCHAR)
  WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON');

-- Drop bad rows.
CREATE STREAM reviews_clean AS SELECT * FROM reviews WHERE id IS NOT NULL;

-- Join each review with its author. As in ksqlDB, a qualified column that both sides of a
-- join have is named <ALIAS>_<COLUMN> unless aliased (r.userid would be R_USERID), so the
-- columns are aliased to keep their plain names.
CREATE STREAM enriched_reviews AS
  SELECT r.id AS id, r.userid AS userid, r.rating AS rating, r.text AS text,
         u.name AS name, u.status AS status
  FROM reviews_clean r INNER JOIN users u ON r.userid = u.userid;

-- Low ratings from Platinum users, for the notification service.
CREATE STREAM unhappy_vips AS
  SELECT * FROM enriched_reviews WHERE rating < 3 AND status = 'Platinum';
