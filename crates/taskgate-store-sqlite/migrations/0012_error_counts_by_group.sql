-- An activity chart reads the buckets of a page's groups over its period. With the group, its
-- granularity, version and bucket in one index it reads those groups' rows only, where the
-- primary key (environment first) made it read every group's rows in the period. The old
-- (group_id, granularity) index is a prefix of the new one, so it goes.
DROP INDEX error_counts_group_idx;
CREATE INDEX error_counts_group_idx ON error_counts (group_id, granularity, version, bucket);
