-- The topics the pipeline reads: reviews as they are written, and the users they join.
CREATE STREAM reviews (id INT KEY, userid INT, rating INT, text VARCHAR)
  WITH (KAFKA_TOPIC='reviews', VALUE_FORMAT='JSON');

CREATE TABLE users (userid INT PRIMARY KEY, name VARCHAR, email VARCHAR, status VARCHAR)
  WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON');
