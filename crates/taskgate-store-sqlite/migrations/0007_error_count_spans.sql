-- Occurrence counts in spans of 2^k hours (granularity 10 + k, k = 0..10, aligned to the
-- epoch) instead of hours (1) and days (2): a window then reads a few buckets per group
-- whatever its length, where whole hours and days made it read nearly one bucket per
-- occurrence once groups are many. Each span is the sum of the hours it holds; minute (0)
-- and all-time (3) buckets are unchanged.
INSERT INTO error_counts (environment_id, version, granularity, bucket, group_id, count)
WITH spans (level, size) AS (
    VALUES (0, 1), (1, 2), (2, 4), (3, 8), (4, 16), (5, 32), (6, 64), (7, 128), (8, 256),
           (9, 512), (10, 1024)
)
SELECT c.environment_id, c.version, 10 + s.level,
       c.bucket - (c.bucket % (CAST(3600000 AS BIGINT) * s.size)), c.group_id, SUM(c.count)
FROM error_counts c CROSS JOIN spans s
WHERE c.granularity = 1
GROUP BY c.environment_id, c.version, 10 + s.level,
         c.bucket - (c.bucket % (CAST(3600000 AS BIGINT) * s.size)), c.group_id;
DELETE FROM error_counts WHERE granularity IN (1, 2);
