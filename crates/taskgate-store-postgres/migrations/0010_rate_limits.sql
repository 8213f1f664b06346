-- Per-organization API rate limits, and a detail on audit events for changes that are not
-- a key's expiry (a rate limit's old and new configuration).

-- The organization's limiter configuration as JSON (`{"type":"tokenBucket",…}`); NULL means
-- the server's default.
ALTER TABLE organizations ADD COLUMN api_rate_limit TEXT;

-- What changed, as JSON, for events that carry more than an expiry.
ALTER TABLE audit_events ADD COLUMN detail TEXT;
