// Schedules with the official SDK 4.8.3 and `trigger.dev dev` 4.8.3: `schedules.*` parsed by
// the SDK's own schemas, upstream's statuses for bad input, a declarative `* * * * *` task and
// an imperative schedule (with an external id and a time zone) firing under `trigger.dev dev`
// with the payload the SDK decodes into Dates. The cases share one dev session of their own,
// whose project declares the cron; the last case stops it.

import { runs, schedules } from "@trigger.dev/sdk";
import { ListSchedulesResult, ScheduleObject, TimezonesResult } from "@trigger.dev/core/v3";
import { as } from "../lib/api.mjs";
import { assert, rejects } from "../lib/check.mjs";
import { startDev } from "../lib/dev.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The schedules' `trigger.dev dev`, declaring `* * * * *` on compat-every-minute. */
const session = (ctx) =>
  (ctx.schedulesDev ??= startDev(ctx, { extraEnv: { COMPAT_DECLARE_CRON: "* * * * *" } }));

/** The first finished run of `task` in the environment, waiting up to `timeoutMs`. */
async function firstRun(ctx, key, task, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const page = await as(ctx, key, () => runs.list({ taskIdentifier: task, limit: 10 }));
    const done = page.data.find((r) => r.isCompleted);
    if (done) return as(ctx, key, () => runs.retrieve(done.id));
    if (Date.now() > deadline) throw new Error(`no run of ${task} finished within ${timeoutMs / 1000}s`);
    await sleep(1_000);
  }
}

export default [
  {
    name: "schedules: the SDK's schedules.* round-trip through the official schemas",
    timeout: 150_000,
    async run({ ctx, step }) {
      const s = await session(ctx);
      await as(ctx, s.devKey, async () => {
        step("timezones (no credential)");
        const zones = TimezonesResult.parse(await schedules.timezones());
        assert.ok(zones.timezones.includes("America/New_York"));
        assert.ok(!(await schedules.timezones({ excludeUtc: true })).timezones.includes("UTC"));

        step("create, and create again with the same key");
        const options = {
          task: "compat-scheduled",
          cron: "0 9 * * 1-5",
          deduplicationKey: "compat-weekdays",
          externalId: "user_42",
          timezone: "Europe/London",
        };
        const created = ScheduleObject.parse(await schedules.create(options));
        assert.equal(created.type, "IMPERATIVE");
        assert.equal(created.generator.expression, "0 9 * * 1-5");
        assert.ok(created.generator.description.length > 0);
        assert.ok(created.nextRun instanceof Date);
        const again = await schedules.create({ ...options, cron: "30 7 * * *" });
        assert.equal(again.id, created.id, "the same deduplicationKey updates the same schedule");
        assert.equal(again.generator.expression, "30 7 * * *");

        step("list, retrieve, update, deactivate, activate");
        const list = ListSchedulesResult.parse(await schedules.list({ page: 1, perPage: 100 }));
        assert.ok(list.data.some((x) => x.id === created.id));
        assert.ok(list.data.some((x) => x.type === "DECLARATIVE" && x.task === "compat-every-minute"));
        const got = ScheduleObject.parse(await schedules.retrieve(created.id));
        assert.equal(got.externalId, "user_42");
        const updated = await schedules.update(created.id, { task: "compat-scheduled", cron: "0 0 L * *", timezone: "Asia/Tokyo" });
        assert.equal(updated.timezone, "Asia/Tokyo");
        assert.equal((await schedules.deactivate(created.id)).active, false);
        assert.equal((await schedules.activate(created.id)).active, true);

        step("upstream's statuses for bad input");
        await rejects(schedules.create({ ...options, deduplicationKey: "bad", cron: "every day" }), { status: 422 });
        await rejects(schedules.create({ ...options, deduplicationKey: "bad", timezone: "Mars/Olympus" }), { status: 422 });
        await rejects(schedules.create({ ...options, deduplicationKey: "bad", task: "compat-hello" }), { status: 422 });
        await rejects(schedules.retrieve("sched_doesnotexist"), { status: 404 });
        const declarative = list.data.find((x) => x.type === "DECLARATIVE");
        await rejects(schedules.update(declarative.id, { task: "compat-every-minute", cron: "0 * * * *" }), { status: 422 });

        step("delete");
        assert.deepEqual(await schedules.del(created.id), { id: created.id });
        await rejects(schedules.retrieve(created.id), { status: 404 });
      });
    },
  },
  {
    name: "schedules: a declarative cron and an imperative schedule fire under trigger.dev dev",
    timeout: 180_000,
    async run({ ctx, step }) {
      const s = await session(ctx);
      step("an imperative schedule every minute, in a time zone, for an external id");
      const imperative = await as(ctx, s.devKey, () =>
        schedules.create({
          task: "compat-scheduled",
          cron: "* * * * *",
          deduplicationKey: "compat-every-minute-imperative",
          externalId: "tenant_7",
          timezone: "America/New_York",
        }),
      );
      step("the declarative task's first run (within 65 s of the session's start)");
      const declared = await firstRun(ctx, s.devKey, "compat-every-minute", 65_000);
      assert.equal(declared.status, "COMPLETED");
      const d = declared.output;
      assert.equal(d.type, "DECLARATIVE");
      assert.ok(d.scheduleId.startsWith("sched_"));
      assert.equal(d.timestampIsDate, true, "timestamp decodes to a Date");
      assert.equal(new Date(d.timestamp).getUTCSeconds(), 0, "the nominal time is on the minute");
      assert.equal(d.timezone, "UTC");
      assert.equal(d.upcoming, 10);
      assert.equal(d.upcomingAreDates, true);
      assert.equal(d.externalId, null);

      step("the imperative schedule's first run");
      const imp = await firstRun(ctx, s.devKey, "compat-scheduled", 65_000);
      assert.equal(imp.status, "COMPLETED");
      assert.equal(imp.output.scheduleId, imperative.id);
      assert.equal(imp.output.type, "IMPERATIVE");
      assert.equal(imp.output.externalId, "tenant_7");
      assert.equal(imp.output.timezone, "America/New_York");
      const schedule = await as(ctx, s.devKey, () => schedules.retrieve(imperative.id));
      assert.ok(schedule.nextRun > new Date(imp.output.timestamp), "the next run is after the fire");
      await as(ctx, s.devKey, () => schedules.del(imperative.id));
      // No more fires for the cases after these: a run every minute would take the CPU
      // that their timing checks measure.
      await s.stop();
    },
  },
];
