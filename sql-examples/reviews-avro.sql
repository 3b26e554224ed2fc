-- The reviews pipeline with AVRO keys and values: the same streams and tables as
-- reviews.sql, with their schemas in the schema registry that `eddy server` serves itself
-- (on 127.0.0.1:8081; no other service needed). Every topic's schema is registered under
-- its subject (<topic>-key, <topic>-value), so Confluent's Avro consumers read the outputs.
-- Run it against a server, then load the same sample data:
--   eddy shell http://localhost:8088 -f sql-examples/reviews-avro.sql
--   eddy shell http://localhost:8088 -f sql-examples/reviews-data.sql

-- Read the topics from their beginning, so records produced before a query starts count.
SET 'auto.offset.reset' = 'earliest';

CREATE STREAM reviews (id INT KEY, userid INT, rating INT, text VARCHAR)
  WITH (KAFKA_TOPIC='reviews_avro', FORMAT='AVRO', PARTITIONS=1);

CREATE TABLE users (userid INT PRIMARY KEY, name VARCHAR, email VARCHAR, status VARCHAR)
  WITH (KAFKA_TOPIC='users_avro', FORMAT='AVRO', PARTITIONS=1);

-- Drop bad rows.
CREATE STREAM reviews_clean AS SELECT * FROM reviews WHERE id IS NOT NULL;

-- Join each review with its author (see reviews.sql for the aliases).
CREATE STREAM enriched_reviews AS
  SELECT r.id AS id, r.userid AS userid, r.rating AS rating, r.text AS text,
         u.name AS name, u.status AS status
  FROM reviews_clean r INNER JOIN users u ON r.userid = u.userid;

-- Low ratings from Platinum users, for the notification service.
CREATE STREAM unhappy_vips AS
  SELECT * FROM enriched_reviews WHERE rating < 3 AND status = 'Platinum';
