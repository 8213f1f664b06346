-- error_counts clustered on its key (WITHOUT ROWID): a window's sum reads one range of the
-- table instead of looking every index entry's row up. Same columns, key and index.
CREATE TABLE error_counts_clustered (
    environment_id  TEXT NOT NULL,
    version         TEXT NOT NULL,
    granularity     INTEGER NOT NULL,
    bucket          BIGINT NOT NULL,
    group_id        TEXT NOT NULL REFERENCES error_groups (id) ON DELETE CASCADE,
    count           BIGINT NOT NULL,
    PRIMARY KEY (environment_id, version, granularity, bucket, group_id)
) WITHOUT ROWID;
INSERT INTO error_counts_clustered (environment_id, version, granularity, bucket, group_id, count)
    SELECT environment_id, version, granularity, bucket, group_id, count FROM error_counts;
DROP TABLE error_counts;
ALTER TABLE error_counts_clustered RENAME TO error_counts;
CREATE INDEX error_counts_group_idx ON error_counts (group_id, granularity);
