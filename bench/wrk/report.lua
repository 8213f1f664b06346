-- Prints one JSON line with wrk's totals when a run ends, so run.sh need not parse wrk's
-- human-readable output (whose units change between us, ms and s). Used on its own for the
-- static-request runs and loaded by random-keys.lua for the distinct-key flood.
-- Latency percentiles are in microseconds, as wrk keeps them.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
