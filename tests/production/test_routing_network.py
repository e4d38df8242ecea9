"""Network routing, pure: the delivery site, transit times between sites and due dates decide
which site makes a job (production.routing)."""

from datetime import UTC, datetime, timedelta

import pytest

from microfactory.errors import Rejected
from production.routing import (
    JobNeeds,
    MachineFacts,
    NoMachineAvailable,
    choose,
    duration_text,
    plan_routes,
    transit_s,
)

NOW = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
HOUR = 3600.0
DAY = 24 * HOUR
NAMES = {"hamburg": "Hamburg", "munich": "Munich", "berlin": "Berlin"}
# Hamburg <-> Munich one day, given one way only: it holds both ways. Berlin: no route at all.
TRANSIT = {("hamburg", "munich"): DAY}


def machine(key: str, site: str, *, eta_h: float = 0.0, state: str = "idle") -> MachineFacts:
    return MachineFacts(
        key=key,
        name=f"{key} (internal)",
        site=NAMES[site],
        site_slug=site,
        model="MK4",
        process="fdm",
        state=state,
        build_volume_mm=(250, 210, 220),
        nozzle_mm=0.4,
        flavour="marlin",
        materials=frozenset({"pla"}),
        queue_eta_s=eta_h * HOUR,
    )


def job(
    deliver_to: str | None, *, due_h: float | None = None, hours: float = 2.0, key: str = "1"
) -> JobNeeds:
    return JobNeeds(
        process="fdm",
        material="pla",
        extents_mm=(40, 40, 20),
        key=key,
        estimated_time_s=hours * HOUR,
        due=NOW + timedelta(hours=due_h) if due_h is not None else None,
        delivery_site=deliver_to,
        delivery_site_name=NAMES.get(deliver_to or "", ""),
        transit_s=TRANSIT,
    )


def site_for(needs: JobNeeds, machines: list[MachineFacts]) -> str:
    chosen = choose(needs, machines, now=NOW)
    planned = plan_routes([needs], machines, NOW)
    # The batch router and the single choice agree on every case here.
    assert planned == {needs.key: chosen.machine.key}
    return chosen.machine.site


def test_transit_counts_both_ways_from_one_row_and_nothing_within_a_site():
    hamburg, munich = machine("h", "hamburg"), machine("m", "munich")
    assert transit_s(job("munich"), hamburg) == DAY
    assert transit_s(job("hamburg"), munich) == DAY
    assert transit_s(job("hamburg"), hamburg) == 0.0
    assert transit_s(job(None), munich) == 0.0  # no delivery site: no transit counts
    assert transit_s(job("berlin"), munich) is None  # a gap in the table: no route


@pytest.mark.parametrize(
    ("hamburg_eta_h", "deliver_to", "site"),
    [
        # Munich is idle, Hamburg has 20 h of work queued: each delivery site keeps its own
        # job, since the day of transit outweighs the queue.
        (20, "hamburg", "Hamburg"),
        (20, "munich", "Munich"),
        # Hamburg's queue is longer than the transit: Munich's parts arrive first even with a
        # day on the road.
        (30, "hamburg", "Munich"),
        (30, "munich", "Munich"),
    ],
)
def test_the_delivery_site_decides_through_arrival_incl_transit(hamburg_eta_h, deliver_to, site):
    machines = [machine("h", "hamburg", eta_h=hamburg_eta_h), machine("m", "munich")]
    assert site_for(job(deliver_to), machines) == site


@pytest.mark.parametrize("due_h", [None, 100, 40])
def test_transit_decides_when_the_due_date_allows(due_h):
    """Hamburg finishes in 22 h, Munich in 2 h but a day away: delivered to Hamburg, Hamburg
    makes it (22 h against 26 h), with or without a due date it meets."""
    machines = [machine("h", "hamburg", eta_h=20), machine("m", "munich")]
    chosen = choose(job("hamburg", due_h=due_h), machines, now=NOW)
    assert chosen.machine.key == "h"
    assert chosen.arrival_s == 22 * HOUR
    assert chosen.reason == "Hamburg: 4 h earlier than Munich (Munich incl. 1 day transit)"


def test_the_due_date_wins_over_transit_when_another_site_makes_it_on_time():
    """Delivered to Hamburg, due in 30 h: Hamburg's own machine would have the parts there in
    34 h, Munich's in 2 h + 1 day = 26 h. Munich makes the due date: it gets the job, though
    Hamburg would have saved the transit."""
    machines = [machine("h", "hamburg", eta_h=32), machine("m", "munich")]
    chosen = choose(job("hamburg", due_h=30), machines, now=NOW)
    assert chosen.machine.site == "Munich"
    assert chosen.reason == (
        "Munich: 8 h earlier than Hamburg incl. 1 day transit; Hamburg would miss the due date"
    )
    assert plan_routes([job("hamburg", due_h=30)], machines, NOW) == {"1": "m"}


def test_delivery_site_changes_the_chosen_site_exactly_when_the_due_date_allows():
    """The same machines and job, only the delivery site changes. Delivered to Munich (idle,
    on time, no transit) Munich makes it; delivered to Hamburg, Hamburg makes it exactly when
    its parts arrive on time and no later than Munich's with their day of transit."""
    for hamburg_eta_h in range(0, 60, 2):
        machines = [machine("h", "hamburg", eta_h=hamburg_eta_h), machine("m", "munich")]
        hamburg_arrives = hamburg_eta_h + 2
        munich_arrives_in_hamburg = 2 + 24
        to_munich = site_for(job("munich", due_h=30), machines)
        to_hamburg = site_for(job("hamburg", due_h=30), machines)
        assert to_munich == "Munich"  # its own machine is idle: always on time, no transit
        hamburg_on_time = hamburg_arrives <= 30
        if hamburg_on_time and hamburg_arrives <= munich_arrives_in_hamburg:
            assert to_hamburg == "Hamburg", hamburg_eta_h
        else:
            assert to_hamburg == "Munich", hamburg_eta_h


def test_when_no_site_makes_the_due_date_the_earliest_arrival_wins_and_says_so():
    machines = [machine("h", "hamburg", eta_h=40), machine("m", "munich", eta_h=10)]
    chosen = choose(job("hamburg", due_h=12), machines, now=NOW)
    # Hamburg: 42 h; Munich: 12 h + 1 day = 36 h. Both late; Munich less so.
    assert chosen.machine.key == "m"
    assert chosen.reason == (
        "Munich: 6 h earlier than Hamburg incl. 1 day transit; "
        "no site makes the due date: 1 day late"
    )


def test_equal_arrival_goes_to_the_site_with_less_transit():
    machines = [machine("h", "hamburg", eta_h=24), machine("m", "munich")]
    chosen = choose(job("hamburg"), machines, now=NOW)
    assert chosen.machine.key == "h"
    assert chosen.reason == "Hamburg: as early as Munich (Munich incl. 1 day transit)"


def test_a_site_with_no_route_is_left_out_and_named_when_nothing_else_can_deliver():
    munich, berlin = machine("m", "munich"), machine("b", "berlin")
    # Berlin is idle but has no route to Hamburg: Munich delivers.
    chosen = choose(job("hamburg"), [berlin, munich], now=NOW)
    assert chosen.machine.key == "m"
    assert chosen.reason == "Munich: the only site that can take it now incl. 1 day transit"
    assert plan_routes([job("hamburg")], [berlin, munich], NOW) == {"1": "m"}
    # Only Berlin can make it: not deliverable, a rejection that says from where and to where.
    gap = "^not deliverable from Berlin: no transit route to Hamburg$"
    with pytest.raises(Rejected, match=gap):
        choose(job("hamburg"), [berlin], now=NOW)
    assert plan_routes([job("hamburg")], [berlin], NOW) == {}
    # Delivered to Berlin itself, Berlin makes it with no transit.
    assert choose(job("berlin"), [berlin, munich], now=NOW).machine.key == "b"


def test_a_deliverable_site_that_is_down_makes_the_job_wait_not_undeliverable():
    munich_down, berlin = machine("m", "munich", state="offline"), machine("b", "berlin")
    with pytest.raises(NoMachineAvailable, match="m \\(internal\\) \\(offline\\)"):
        choose(job("hamburg"), [munich_down, berlin], now=NOW)


def test_the_reason_names_sites_never_machines():
    machines = [machine("h", "hamburg", eta_h=30), machine("m", "munich")]
    reason = choose(job("hamburg", due_h=100), machines, now=NOW).reason
    assert "internal" not in reason and reason.startswith("Munich: ")


def test_the_batch_plan_fills_the_near_site_then_spills_over_when_arrival_says_so():
    """Twelve 4-hour jobs delivered to Hamburg, one machine at each site: Hamburg takes jobs
    until its queue passes the day of transit, then Munich's parts arrive first."""
    machines = [machine("h", "hamburg"), machine("m", "munich")]
    reasons: dict[str, str] = {}
    jobs = [job("hamburg", hours=4, key=f"{i:02d}") for i in range(12)]
    plan = plan_routes(jobs, machines, NOW, reasons=reasons)
    assert [plan[j.key] for j in jobs] == ["h"] * 7 + ["m"] + ["h"] + ["m"] + ["h"] + ["m"]
    assert reasons["00"] == "Hamburg: 1 day earlier than Munich (Munich incl. 1 day transit)"
    assert reasons["07"] == "Munich: 4 h earlier than Hamburg incl. 1 day transit"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (20, "under a minute"),
        (45 * 60, "45 min"),
        (2 * HOUR, "2 h"),
        (2 * HOUR + 5 * 60, "2 h 5 min"),
        (DAY, "1 day"),
        (DAY + 3 * HOUR + 10 * 60, "1 day 3 h"),
        (2 * DAY, "2 days"),
    ],
)
def test_durations_read_as_people_say_them(seconds, text):
    assert duration_text(seconds) == text
