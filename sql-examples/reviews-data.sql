-- Sample data for reviews.sql, loaded with INSERT INTO … VALUES.
-- Users first: Ada and Grace are Platinum, Linus is Gold (and becomes Platinum below),
-- Ken is deleted later by a tombstone (see tests/reviews_e2e.rs, which also sends one).
INSERT INTO users (userid, name, email, status, ROWTIME) VALUES (1, 'Ada', 'ada@example.com', 'Platinum', 1000);
INSERT INTO users (userid, name, email, status, ROWTIME) VALUES (2, 'Grace', 'grace@example.com', 'Platinum', 1000);
INSERT INTO users (userid, name, email, status, ROWTIME) VALUES (3, 'Linus', 'linus@example.com', 'Gold', 1000);
INSERT INTO users (userid, name, email, status, ROWTIME) VALUES (4, 'Ken', 'ken@example.com', 'Gold', 1000);

INSERT INTO reviews (id, userid, rating, text, ROWTIME) VALUES (100, 1, 5, 'Lovely', 2000);
INSERT INTO reviews (id, userid, rating, text, ROWTIME) VALUES (101, 2, 1, 'Broken on arrival', 2001);
INSERT INTO reviews (id, userid, rating, text, ROWTIME) VALUES (102, 3, 2, 'Meh', 2002);
INSERT INTO reviews (userid, rating, text, ROWTIME) VALUES (1, 1, 'review without an id', 2003);
INSERT INTO reviews (id, userid, rating, text, ROWTIME) VALUES (103, 4, 4, 'Fine', 2004);
INSERT INTO reviews (id, userid, rating, text, ROWTIME) VALUES (104, 99, 1, 'Unknown user', 2005);
