-- 0010_search.sql: the viewer's queue search (GET /api/tickets?q=WORDS) finds words inside
-- message text in any script: Urdu (آرڈر), Roman Urdu (order nahi aya), English. Trigrams do
-- that without a language's stemmer (PostgreSQL has none for Urdu) and serve ILIKE '%word%'
-- from an index. pg_trgm ships with postgresql-15 and is a trusted extension, so the database
-- owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX messages_body_trgm ON messages USING gin (body gin_trgm_ops);
