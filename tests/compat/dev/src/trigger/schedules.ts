// Scheduled tasks. `compat-every-minute` declares `* * * * *` only in the dev session that
// sets COMPAT_DECLARE_CRON (the schedules cases), so other sessions' projects get
// no runs they did not ask for; `compat-scheduled` is for imperative schedules.
import { schedules } from "@trigger.dev/sdk";

/** What the task saw of its payload: the SDK decodes the times into Dates. */
const describe = (payload: {
  scheduleId: string;
  type: string;
  timestamp: Date;
  lastTimestamp?: Date;
  externalId?: string;
  timezone: string;
  upcoming: Date[];
}) => ({
  scheduleId: payload.scheduleId,
  type: payload.type,
  timestamp: payload.timestamp.toISOString(),
  timestampIsDate: payload.timestamp instanceof Date,
  lastTimestamp: payload.lastTimestamp === undefined ? "undefined" : payload.lastTimestamp.toISOString(),
  externalId: payload.externalId ?? null,
  timezone: payload.timezone,
  upcoming: payload.upcoming.length,
  upcomingAreDates: payload.upcoming.every((d) => d instanceof Date),
});

export const everyMinute = schedules.task({
  id: "compat-every-minute",
  ...(process.env.COMPAT_DECLARE_CRON ? { cron: process.env.COMPAT_DECLARE_CRON } : {}),
  run: async (payload) => describe(payload),
});

export const scheduled = schedules.task({
  id: "compat-scheduled",
  run: async (payload) => describe(payload),
});
