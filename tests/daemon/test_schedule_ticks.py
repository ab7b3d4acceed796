"""Schedule ticks due now: catch-up policies, redone ticks, DST transitions, run identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagloom.daemon import (
    RUN_KEY_TAG,
    CatchUp,
    CatchUpPolicy,
    LastScheduleTick,
    ScheduledRunIdentity,
    ScheduleTickState,
    schedule_ticks_due,
)
from dagloom.definitions import ScheduleDefinition, build_schedule_context
from dagloom.definitions._cron import iter_cron_ticks
from dagloom.definitions.schedule import SCHEDULED_EXECUTION_TIME_TAG
from dagloom.instance.config import parse_config

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def utc(text: str) -> float:
    """Seconds since the epoch of a naive ISO time read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def iso(ticks: tuple[datetime, ...]) -> list[str]:
    return [t.isoformat() for t in ticks]


def state(
    cron: str = "* * * * *",
    *,
    tz: str | None = None,
    started: str = "2026-01-01T00:00:00",
    last: str | None = None,
    finished: bool = True,
    failures: int = 0,
    mode: CatchUp = CatchUp.LATEST,
    limit: int = 5,
    grace: float = 60.0,
    max_tick_retries: int = 0,
) -> ScheduleTickState:
    last_tick = None
    if last is not None:
        last_tick = LastScheduleTick(utc(last), finished=finished, failure_count=failures)
    return ScheduleTickState(
        cron_schedule=cron,
        execution_timezone=tz,
        started_at=utc(started),
        last_tick=last_tick,
        catch_up=CatchUpPolicy(mode, limit, grace),
        max_tick_retries=max_tick_retries,
    )


# -- catch-up policies, table-driven --------------------------------------------------------

CASES = [
    pytest.param(
        state(started="2026-05-01T12:00:30"),
        "2026-05-01T12:05:10",
        ["2026-05-01T12:05:00+00:00"],
        ("2026-05-01T12:01:00+00:00", "2026-05-01T12:04:00+00:00"),
        id="latest-only-by-default",
    ),
    pytest.param(
        state(started="2026-05-01T12:00:00"),
        "2026-05-01T12:00:00",
        ["2026-05-01T12:00:00+00:00"],
        None,
        id="a-tick-at-the-start-instant-counts",
    ),
    pytest.param(
        state(started="2026-05-01T12:30:00", cron="0 * * * *"),
        "2026-05-01T12:45:00",
        [],
        None,
        id="never-a-tick-from-before-the-start",
    ),
    pytest.param(
        state(last="2026-05-01T12:03:00"),
        "2026-05-01T12:05:10",
        ["2026-05-01T12:05:00+00:00"],
        ("2026-05-01T12:04:00+00:00", "2026-05-01T12:04:00+00:00"),
        id="latest-after-the-last-tick",
    ),
    pytest.param(
        state(last="2026-05-01T12:05:00"),
        "2026-05-01T12:05:50",
        [],
        None,
        id="nothing-new-since-the-last-tick",
    ),
    pytest.param(
        state(last="2026-05-01T12:00:00", mode=CatchUp.ALL, limit=3),
        "2026-05-01T12:10:05",
        ["2026-05-01T12:08:00+00:00", "2026-05-01T12:09:00+00:00", "2026-05-01T12:10:00+00:00"],
        ("2026-05-01T12:01:00+00:00", "2026-05-01T12:07:00+00:00"),
        id="all-keeps-the-latest-limit",
    ),
    pytest.param(
        state(last="2026-05-01T12:00:00", mode=CatchUp.ALL, limit=20, cron="*/5 * * * *"),
        "2026-05-01T12:16:00",
        ["2026-05-01T12:05:00+00:00", "2026-05-01T12:10:00+00:00", "2026-05-01T12:15:00+00:00"],
        None,
        id="all-within-the-limit-takes-every-tick",
    ),
    pytest.param(
        state(last="2026-05-01T12:00:00", mode=CatchUp.NONE, cron="*/5 * * * *"),
        "2026-05-01T12:10:59",
        ["2026-05-01T12:10:00+00:00"],
        ("2026-05-01T12:05:00+00:00", "2026-05-01T12:05:00+00:00"),
        id="none-takes-only-on-time-ticks",
    ),
    pytest.param(
        state(last="2026-05-01T11:00:00", mode=CatchUp.NONE, cron="0 * * * *"),
        "2026-05-01T12:30:00",
        [],
        ("2026-05-01T12:00:00+00:00", "2026-05-01T12:00:00+00:00"),
        id="none-skips-a-late-tick",
    ),
    pytest.param(
        state(started="2025-05-01T00:00:00", last="2025-05-01T00:00:00", cron="0 0 1 1 *"),
        "2031-06-01T00:00:00",
        ["2031-01-01T00:00:00+00:00"],
        ("2026-01-01T00:00:00+00:00", "2030-01-01T00:00:00+00:00"),
        id="a-yearly-schedule-years-behind",
    ),
]


@pytest.mark.parametrize(("tick_state", "now", "expected", "skipped"), CASES)
def test_the_catch_up_policy_picks_the_due_ticks(
    tick_state: ScheduleTickState,
    now: str,
    expected: list[str],
    skipped: tuple[str, str] | None,
) -> None:
    due = schedule_ticks_due(tick_state, now=utc(now))
    assert iso(due.ticks) == expected
    assert due.redone is None
    if skipped is None:
        assert due.skipped_first is due.skipped_last is None
    else:
        assert due.skipped_first is not None and due.skipped_last is not None
        assert (due.skipped_first.isoformat(), due.skipped_last.isoformat()) == skipped
    assert due.next_tick.timestamp() > utc(now)


def test_a_minutely_schedule_a_year_behind_is_answered_without_walking_the_year() -> None:
    tick_state = state(last="2025-05-01T12:00:00", started="2025-01-01T00:00:00")
    due = schedule_ticks_due(tick_state, now=utc("2026-05-01T12:00:30"))
    assert iso(due.ticks) == ["2026-05-01T12:00:00+00:00"]
    assert due.skipped_first is not None and due.skipped_last is not None
    assert due.skipped_first.isoformat() == "2025-05-01T12:01:00+00:00"
    assert due.skipped_last.isoformat() == "2026-05-01T11:59:00+00:00"


def test_the_next_tick_is_the_first_strictly_after_now() -> None:
    due = schedule_ticks_due(state(cron="0 * * * *"), now=utc("2026-05-01T12:00:00"))
    assert due.next_tick.isoformat() == "2026-05-01T13:00:00+00:00"


# -- ticks done again -----------------------------------------------------------------------


def test_an_interrupted_tick_is_done_again_first_whatever_the_policy() -> None:
    tick_state = state(last="2026-05-01T12:00:00", finished=False, mode=CatchUp.NONE)
    due = schedule_ticks_due(tick_state, now=utc("2026-05-01T12:02:10"))
    assert iso(due.ticks) == ["2026-05-01T12:00:00+00:00", "2026-05-01T12:02:00+00:00"]
    assert due.redone == due.ticks[0]
    assert due.skipped_first is not None and due.skipped_first == due.skipped_last
    assert due.skipped_first.isoformat() == "2026-05-01T12:01:00+00:00"


@pytest.mark.parametrize(
    ("failures", "max_tick_retries", "redone"),
    [(1, 0, False), (1, 1, True), (2, 1, False), (0, 3, False)],
)
def test_a_failed_tick_is_done_again_up_to_max_tick_retries(
    failures: int, max_tick_retries: int, redone: bool
) -> None:
    tick_state = state(
        last="2026-05-01T12:00:00", failures=failures, max_tick_retries=max_tick_retries
    )
    due = schedule_ticks_due(tick_state, now=utc("2026-05-01T12:00:40"))
    assert (due.redone is not None) is redone
    assert len(due.ticks) == int(redone)


def test_an_interrupted_tick_from_before_a_restart_of_the_schedule_is_dropped() -> None:
    tick_state = state(started="2026-05-01T12:00:30", last="2026-05-01T12:00:00", finished=False)
    due = schedule_ticks_due(tick_state, now=utc("2026-05-01T12:00:40"))
    assert due.ticks == () and due.redone is None


# -- daylight-saving time -------------------------------------------------------------------


def test_london_spring_forward_runs_a_missing_time_at_the_jump() -> None:
    # 2026-03-29: clocks go from 01:00 GMT to 02:00 BST; 01:30 never happens.
    tick_state = state(cron="30 1 * * *", tz="Europe/London", last="2026-03-28T01:30:00")
    due = schedule_ticks_due(tick_state, now=utc("2026-03-29T01:00:30"))
    assert iso(due.ticks) == ["2026-03-29T02:00:00+01:00"]


def test_london_fall_back_runs_a_repeated_time_once_at_its_second_occurrence() -> None:
    # 2026-10-25: clocks go from 02:00 BST back to 01:00 GMT; 01:30 happens twice.
    tick_state = state(cron="30 1 * * *", tz="Europe/London", last="2026-10-24T00:30:00")
    early = schedule_ticks_due(tick_state, now=utc("2026-10-25T00:45:00"))
    assert early.ticks == ()
    assert early.next_tick.isoformat() == "2026-10-25T01:30:00+00:00"
    late = schedule_ticks_due(tick_state, now=utc("2026-10-25T01:31:00"))
    assert iso(late.ticks) == ["2026-10-25T01:30:00+00:00"]


def test_new_york_fall_back_fires_an_hourly_schedule_every_hour() -> None:
    # 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:00 happens twice.
    tick_state = state(
        cron="0 * * * *",
        tz="America/New_York",
        last="2026-11-01T04:00:00",
        mode=CatchUp.ALL,
        limit=10,
    )
    due = schedule_ticks_due(tick_state, now=utc("2026-11-01T07:00:30"))
    assert iso(due.ticks) == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]


def test_the_ticks_left_out_are_told_by_instant_across_a_repeated_hour() -> None:
    tick_state = state(cron="0 * * * *", tz="Europe/London", started="2026-10-24T23:00:00")
    due = schedule_ticks_due(tick_state, now=utc("2026-10-25T01:00:30"))
    assert iso(due.ticks) == ["2026-10-25T01:00:00+00:00"]
    assert due.skipped_first is not None and due.skipped_last is not None
    assert due.skipped_first.isoformat() == "2026-10-25T00:00:00+01:00"
    assert due.skipped_last.isoformat() == "2026-10-25T01:00:00+01:00"


def test_new_york_spring_forward_skips_the_missing_hour_of_an_hourly_schedule() -> None:
    # 2026-03-08: 02:00 EST becomes 03:00 EDT.
    tick_state = state(
        cron="0 * * * *",
        tz="America/New_York",
        last="2026-03-08T06:00:00",
        mode=CatchUp.ALL,
        limit=10,
    )
    due = schedule_ticks_due(tick_state, now=utc("2026-03-08T08:00:30"))
    assert iso(due.ticks) == ["2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"]


# -- properties -----------------------------------------------------------------------------

CRONS = ["* * * * *", "*/7 * * * *", "0 * * * *", "30 1 * * *", "0 2 * * *", "15 1,2,3 * * *"]
ZONES = [None, "Europe/London", "America/New_York"]
# Windows around 2026's transitions in both zones, so DST is exercised often.
ANCHORS = [utc(t) for t in ("2026-03-08T05:00:00", "2026-03-29T00:00:00", "2026-10-25T00:00:00")]
ANCHORS += [utc("2026-11-01T04:00:00"), utc("2026-07-01T00:00:00")]


def all_ticks(tick_state: ScheduleTickState, low: float, high: float) -> list[datetime]:
    """Every tick t with low < t <= high, by walking forwards (the slow, obvious way)."""
    zone = ZoneInfo(tick_state.execution_timezone) if tick_state.execution_timezone else UTC
    crons = [tick_state.cron_schedule] if isinstance(tick_state.cron_schedule, str) else []
    out = []
    for tick in iter_cron_ticks(crons, zone, datetime.fromtimestamp(low, UTC)):
        if tick.timestamp() > high:
            return out
        out.append(tick)
    raise AssertionError("unreachable: the iterator is infinite")


@st.composite
def tick_states(draw: st.DrawFn) -> tuple[ScheduleTickState, float]:
    anchor = draw(st.sampled_from(ANCHORS))
    started = anchor + draw(st.integers(-3 * 3600, 6 * 3600))
    last = draw(st.none() | st.integers(0, 24 * 3600).map(lambda s: float(anchor + s)))
    now = started + draw(st.integers(0, 30 * 3600))
    policy = CatchUpPolicy(
        draw(st.sampled_from(list(CatchUp))),
        draw(st.integers(1, 8)),
        float(draw(st.integers(0, 3 * 3600))),
    )
    tick_state = ScheduleTickState(
        cron_schedule=draw(st.sampled_from(CRONS)),
        execution_timezone=draw(st.sampled_from(ZONES)),
        started_at=float(started),
        last_tick=None if last is None else LastScheduleTick(last),
        catch_up=policy,
    )
    return tick_state, float(now)


@settings(max_examples=150, deadline=None)
@given(tick_states())
def test_due_ticks_match_a_forward_walk_of_the_window(
    drawn: tuple[ScheduleTickState, float],
) -> None:
    tick_state, now = drawn
    low = tick_state.started_at - 1e-6
    if tick_state.last_tick is not None:
        low = max(low, tick_state.last_tick.scheduled_time)
    window = all_ticks(tick_state, low, now)
    policy = tick_state.catch_up
    if policy.mode is CatchUp.LATEST:
        expected = window[-1:]
    elif policy.mode is CatchUp.ALL:
        expected = window[-policy.limit :]
    else:
        expected = [t for t in window if now - t.timestamp() <= policy.grace_seconds]
        expected = expected[-policy.limit :]
    due = schedule_ticks_due(tick_state, now=now)
    assert [t.timestamp() for t in due.ticks] == [t.timestamp() for t in expected]
    left_out = [t for t in window if t.timestamp() < (expected or [due.next_tick])[0].timestamp()]
    if left_out:
        assert due.skipped_first is not None and due.skipped_last is not None
        assert due.skipped_first.timestamp() == left_out[0].timestamp()
        assert due.skipped_last.timestamp() == left_out[-1].timestamp()
    else:
        assert due.skipped_first is None and due.skipped_last is None


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(CRONS),
    st.sampled_from(ZONES),
    st.sampled_from(ANCHORS),
    st.lists(st.integers(1, 5400), min_size=1, max_size=60),
)
def test_a_daemon_that_records_each_tick_fires_every_tick_once(
    cron: str, zone: str | None, anchor: float, steps: list[int]
) -> None:
    """Stepping the clock by random amounts (up to 90 min) and recording what was due, with
    `all` and a roomy limit, evaluates every tick of the span exactly once, in order."""
    policy = CatchUpPolicy(CatchUp.ALL, limit=100)
    last: LastScheduleTick | None = None
    now = anchor
    fired: list[float] = []
    for step in steps:
        now += step
        tick_state = ScheduleTickState(
            cron, zone, started_at=anchor, last_tick=last, catch_up=policy
        )
        due = schedule_ticks_due(tick_state, now=now)
        fired += [t.timestamp() for t in due.ticks]
        if due.ticks:
            last = LastScheduleTick(due.ticks[-1].timestamp())
        again = ScheduleTickState(cron, zone, started_at=anchor, last_tick=last, catch_up=policy)
        assert schedule_ticks_due(again, now=now).ticks == ()
    expected = [t.timestamp() for t in all_ticks(tick_state, anchor - 1e-6, now)]
    assert fired == expected


def test_bad_cron_strings_and_timezones_are_refused() -> None:
    with pytest.raises(ValueError, match="cron string"):
        schedule_ticks_due(state(cron="61 * * * *"), now=0)
    with pytest.raises(ValueError, match="timezone"):
        schedule_ticks_due(state(tz="Mars/Olympus"), now=0)
    with pytest.raises(ValueError, match="at least 1"):
        CatchUpPolicy(CatchUp.ALL, limit=0)


def test_the_policy_comes_from_the_instance_config() -> None:
    config = parse_config(
        {
            "scheduler": {"class": "DagsterDaemonScheduler", "config": {"max_catchup_runs": 12}},
            "schedules": {"catch_up": "none", "catch_up_grace_seconds": 30},
        }
    )
    assert CatchUpPolicy.from_config(config) == CatchUpPolicy(CatchUp.NONE, 12, 30.0)
    assert CatchUpPolicy.from_config(config, "all").mode is CatchUp.ALL
    assert CatchUpPolicy.from_config(parse_config({})) == CatchUpPolicy()


# -- run identity ---------------------------------------------------------------------------


def test_a_tick_identity_gives_one_run_id_per_tick_and_key() -> None:
    tick = datetime(2026, 10, 25, 1, 30, fold=1, tzinfo=LONDON)
    same_instant = tick.astimezone(UTC)
    ident = ScheduledRunIdentity("loc", "nightly", tick, "a")
    assert ident.run_id == ScheduledRunIdentity("loc", "nightly", same_instant, "a").run_id
    others = {
        ScheduledRunIdentity("loc", "nightly", tick, None).run_id,
        ScheduledRunIdentity("loc", "nightly", tick, "").run_id,
        ScheduledRunIdentity("loc", "nightly", tick, "b").run_id,
        ScheduledRunIdentity("loc2", "nightly", tick, "a").run_id,
        ScheduledRunIdentity("loc", "nightly", tick - timedelta(hours=1), "a").run_id,
        ScheduledRunIdentity("loc", "nightly", tick.replace(fold=0), "a").run_id,
    }
    assert ident.run_id not in others and len(others) == 6


def test_a_tick_identity_matches_the_runs_evaluate_tick_tags() -> None:
    schedule = ScheduleDefinition(
        "nightly", cron_schedule="30 1 * * *", job_name="etl", execution_timezone="Europe/London"
    )
    (tick,) = schedule.tick_times_between(
        datetime(2026, 10, 25, 0, 0, tzinfo=UTC), datetime(2026, 10, 25, 2, 0, tzinfo=UTC)
    )
    context = build_schedule_context(scheduled_execution_time=tick)
    (request,) = schedule.evaluate_tick(context).run_requests
    ident = ScheduledRunIdentity("loc", "nightly", tick)
    assert ident.tags.items() <= request.tags.items()
    assert ident.matches("loc", request.tags)

    def retagged(value: str) -> dict[str, str]:
        return {**request.tags, SCHEDULED_EXECUTION_TIME_TAG: value}

    assert ident.matches("loc", retagged(tick.astimezone(UTC).isoformat()))
    assert not ident.matches("loc", retagged(tick.replace(fold=0).isoformat()))
    assert not ident.matches("loc", retagged("soon"))
    assert not ident.matches("loc", retagged("2026-10-25T01:30:00"))
    assert not ident.matches("other", request.tags)
    assert not ident.matches("loc", {**request.tags, RUN_KEY_TAG: "k"})
    with pytest.raises(ValueError, match="timezone-aware"):
        ScheduledRunIdentity("loc", "nightly", datetime(2026, 1, 1))


class _Crash(Exception):
    """The simulated daemon dies here."""


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(CRONS[:3]),
    st.sampled_from(ZONES),
    st.lists(st.integers(20, 1800), min_size=1, max_size=40),
    st.sets(st.integers(0, 200), max_size=30),
)
def test_a_daemon_killed_mid_tick_submits_each_run_exactly_once(
    cron: str, zone: str | None, steps: list[int], crash_at: set[int]
) -> None:
    """The scheduler loop's protocol over these functions: record the tick STARTED, create
    each run under its derived id unless storage holds it, record the tick finished. Killing
    the loop at any of those points and starting it again loses no run and doubles none."""
    anchor = ANCHORS[1]
    policy = CatchUpPolicy(CatchUp.ALL, limit=10_000)
    keys = ["a", "b"]
    runs: dict[str, tuple[float, str]] = {}  # storage: run id -> (tick, run key)
    last: LastScheduleTick | None = None
    point = 0

    def maybe_crash() -> None:
        nonlocal point
        point += 1
        if point in crash_at:
            raise _Crash

    now = anchor
    for step in [*steps, 0]:  # the last round runs without crashing, to finish what is owed
        now += step
        if step == 0:
            crash_at = set()
        tick_state = ScheduleTickState(
            cron, zone, started_at=anchor, last_tick=last, catch_up=policy
        )
        try:
            for tick in schedule_ticks_due(tick_state, now=now).ticks:
                last = LastScheduleTick(tick.timestamp(), finished=False)
                maybe_crash()
                for key in keys:
                    run_id = ScheduledRunIdentity("loc", "s", tick, key).run_id
                    if run_id not in runs:
                        runs[run_id] = (tick.timestamp(), key)
                    maybe_crash()
                last = LastScheduleTick(tick.timestamp())
        except _Crash:
            continue
    expected = [t.timestamp() for t in all_ticks(tick_state, anchor - 1e-6, now)]
    made = sorted(runs.values())
    assert made == sorted((t, key) for t in expected for key in keys)


def test_a_policy_mode_may_be_named() -> None:
    assert CatchUpPolicy("all").mode is CatchUp.ALL
    with pytest.raises(ValueError, match="'sometimes'"):
        CatchUpPolicy("sometimes")
