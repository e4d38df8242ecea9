from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from microfactory.errors import Rejected
from production.routing import (
    JobNeeds,
    MachineFacts,
    NoMachineAvailable,
    can_make,
    capable_machines,
    choose_machine,
    dfm_capable,
    plan_routes,
    urgency,
    with_material,
)


def machine(
    key,
    *,
    state="idle",
    volume=(250, 210, 220),
    materials=("pla",),
    queued=0,
    model="MK4",
    eta=0.0,
    limit=0,
    loadable=(),
):
    return MachineFacts(
        key=key,
        name=key,
        site="north",
        model=model,
        process="fdm",
        state=state,
        build_volume_mm=volume,
        nozzle_mm=0.4,
        flavour="marlin",
        materials=frozenset(materials),
        queued_jobs=queued,
        queue_eta_s=eta,
        queue_limit=limit,
        loadable=frozenset(loadable),
    )


NEEDS = JobNeeds(process="fdm", material="pla", extents_mm=(40, 40, 20))


def test_an_idle_machine_wins_over_a_busy_one_with_a_shorter_queue():
    chosen = choose_machine(NEEDS, [machine("a", state="busy", queued=0), machine("b", queued=3)])
    assert chosen.key == "b"


def test_among_equal_machines_the_shortest_queue_then_the_name_decides():
    machines = [machine("c", queued=2), machine("b", queued=1), machine("a", queued=1)]
    assert choose_machine(NEEDS, machines).key == "a"


def test_machines_without_the_material_or_room_are_never_chosen():
    machines = [machine("petg-only", materials=("petg",)), machine("tiny", volume=(30, 30, 30))]
    with pytest.raises(Rejected, match="no fdm machine has pla loaded"):
        choose_machine(NEEDS, machines)


def test_offline_and_maintenance_machines_make_the_job_wait():
    with pytest.raises(NoMachineAvailable, match="a \\(offline\\), b \\(maintenance\\)"):
        choose_machine(NEEDS, [machine("a", state="offline"), machine("b", state="maintenance")])


def test_a_planned_toolpath_restricts_routing_to_machines_of_its_profile():
    planned = machine("x", model="MK4").profile_key
    needs = JobNeeds(process="fdm", material="pla", extents_mm=(40, 40, 20), profile_key=planned)
    assert (
        choose_machine(needs, [machine("voron", model="Voron"), machine("x", queued=5)]).key == "x"
    )


# --- the router of issue #8: capability, score, limits, batch plans --------------------------

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def needs(
    key="1",
    *,
    material="pla",
    extents=(40, 40, 20),
    time_s=600.0,
    due=None,
    priority=1,
    process="fdm",
    nozzle=None,
):
    return JobNeeds(
        process=process,
        material=material,
        extents_mm=extents,
        key=key,
        estimated_time_s=time_s,
        due=due,
        priority=priority,
        nozzle_mm=nozzle,
    )


def fleet(*specs):
    return [machine(key, **changes) for key, changes in specs]


def test_capability_needs_the_process_the_material_the_room_and_the_nozzle():
    cnc = MachineFacts(
        key="cnc",
        name="cnc",
        site="n",
        model="m",
        process="cnc_mill",
        state="idle",
        build_volume_mm=(500, 500, 500),
        nozzle_mm=0,
        flavour="marlin",
        materials=frozenset({"pla"}),
    )
    machines = [
        cnc,
        machine("petg", materials=("petg",)),
        machine("small", volume=(50, 50, 10)),
        machine("fits"),
    ]
    assert [m.key for m in capable_machines(needs(), machines)] == ["fits"]
    assert can_make(needs(nozzle=0.6), machine("fits")) is False
    assert can_make(needs(nozzle=0.4), machine("fits")) is True


def test_a_part_turned_on_the_bed_still_fits():
    assert can_make(needs(extents=(200, 240, 10)), machine("mk4", volume=(250, 210, 220)))
    assert not can_make(needs(extents=(200, 240, 230)), machine("mk4", volume=(250, 210, 220)))


def test_a_loadable_material_makes_a_machine_capable_at_a_changeover_cost():
    machines = [
        machine("loaded", materials=("pla",)),
        machine("swap", materials=("petg",), loadable=("pla",)),
    ]
    # Both idle with empty queues: the one with PLA loaded finishes first.
    assert choose_machine(needs(), machines, changeover_s=900).key == "loaded"
    # The loaded one has 20 min queued; the swap costs 15 min: swapping is sooner.
    machines[0] = machine("loaded", materials=("pla",), eta=1200, queued=2)
    assert choose_machine(needs(), machines, changeover_s=900).key == "swap"


def test_the_machine_that_finishes_soonest_wins():
    machines = fleet(("a", {"eta": 3600, "queued": 1}), ("b", {"eta": 600, "queued": 3}))
    assert choose_machine(needs(), machines).key == "b"


def test_full_machines_take_no_more_work():
    full = machine("full", queued=2, limit=2)
    assert choose_machine(needs(), [full, machine("spare", eta=9999, queued=0)]).key == "spare"
    with pytest.raises(NoMachineAvailable, match="full \\(full: 2 jobs\\)"):
        choose_machine(needs(), [full])


@pytest.mark.parametrize("state", ["offline", "maintenance", "error"])
def test_a_down_machine_is_never_assigned_even_when_it_would_be_fastest(state):
    machines = [machine("down", state=state), machine("slow", eta=86400, queued=9)]
    assert choose_machine(needs(), machines).key == "slow"
    jobs = [needs(str(i)) for i in range(20)]
    assert set(plan_routes(jobs, machines, NOW).values()) == {"slow"}


def test_the_plan_spreads_jobs_over_machines_and_respects_queue_limits():
    machines = fleet(("a", {"limit": 3}), ("b", {"limit": 3}))
    plan = plan_routes([needs(str(i)) for i in range(10)], machines, NOW)
    assert sorted(Counter(plan.values()).items()) == [("a", 3), ("b", 3)]
    assert len(plan) == 6  # the other four wait


def test_urgent_jobs_are_placed_first_by_slack_then_priority():
    soon = NOW + timedelta(hours=2)
    later = NOW + timedelta(days=3)
    jobs = [
        needs("no-due-urgent", priority=3),
        needs("due-later", due=later),
        needs("due-soon-long", due=soon, time_s=5400),
        needs("due-soon-short", due=soon, time_s=600),
        needs("no-due-low", priority=0),
    ]
    order = [job.key for job in sorted(jobs, key=lambda job: urgency(job, NOW))]
    assert order == ["due-soon-long", "due-soon-short", "due-later", "no-due-urgent", "no-due-low"]
    # With room for one job, the most urgent gets it.
    plan = plan_routes(jobs, [machine("only", limit=1)], NOW)
    assert plan == {"due-soon-long": "only"}


def test_jobs_wait_for_the_loaded_material_until_the_queue_outweighs_a_changeover():
    machines = [
        machine("petg-loaded", materials=("petg",)),
        machine("pla-loaded", materials=("pla",), loadable=("petg",)),
    ]
    three = plan_routes(
        [needs(f"j{i}", material="petg") for i in range(3)], machines, NOW, changeover_s=3600
    )
    assert set(three.values()) == {"petg-loaded"}  # 30 min of queue beats a 1 h changeover
    ten = plan_routes(
        [needs(f"j{i}", material="petg") for i in range(10)], machines, NOW, changeover_s=3600
    )
    assert Counter(ten.values()) == {"petg-loaded": 8, "pla-loaded": 2}


def test_the_same_inputs_give_the_same_plan():
    machines = [machine(f"m{i}", eta=(i * 37) % 5 * 600, queued=i % 3) for i in range(8)]
    jobs = [
        needs(
            str(i), time_s=300 + (i * 53) % 900, due=NOW + timedelta(hours=i % 5) if i % 2 else None
        )
        for i in range(200)
    ]
    first = plan_routes(jobs, machines, NOW, changeover_s=600)
    again = plan_routes(list(reversed(jobs)), list(reversed(machines)), NOW, changeover_s=600)
    assert again == first
    assert len(first) == 200


def test_only_machines_the_dfm_report_found_capable_can_make_the_job():
    machines = [machine("a"), machine("b"), machine("c")]
    restricted = JobNeeds(
        process="fdm", material="pla", extents_mm=(40, 40, 20), allowed_machines=frozenset({"b"})
    )
    assert [m.key for m in capable_machines(restricted, machines)] == ["b"]
    assert choose_machine(restricted, machines).key == "b"
    assert can_make(NEEDS, machine("a"))  # None: no restriction (jobs from before reports)


def test_planning_many_jobs_respects_each_jobs_capable_machines():
    only_b = JobNeeds(
        process="fdm",
        material="pla",
        extents_mm=(40, 40, 20),
        key="1",
        allowed_machines=frozenset({"b"}),
    )
    free = JobNeeds(process="fdm", material="pla", extents_mm=(40, 40, 20), key="2")
    plan = plan_routes([only_b, free], [machine("a"), machine("b", queued=5)], NOW)
    assert plan == {"1": "b", "2": "a"}


def test_a_job_no_capable_machine_can_take_is_rejected_naming_the_reports_machines():
    needs = JobNeeds(
        process="fdm", material="pla", extents_mm=(40, 40, 20), allowed_machines=frozenset()
    )
    with pytest.raises(Rejected, match=r"among those its DFM report found capable \(none\)"):
        choose_machine(needs, [machine("a")])


def test_the_capable_machines_come_from_the_stored_report():
    assert dfm_capable({"capable": ["b", "a"], "extents_mm": [1, 2, 3]}) == frozenset({"a", "b"})
    assert dfm_capable({"capable": []}) == frozenset()
    assert dfm_capable({"extents_mm": [1, 2, 3]}) is None  # stored before reports named them
    assert dfm_capable(None) is None


def test_dfm_candidates_have_the_material_loaded_or_loadable():
    machines = [
        machine("loaded"),
        machine("loadable", materials=("petg",), loadable=("pla",)),
        machine("other", materials=("petg",)),
    ]
    assert [m.key for m in with_material(machines, "pla")] == ["loaded", "loadable"]


# --- spools -------------------------------------------------------------------------------------


def spooled(key, grams, *, reserve=20.0, **kwargs):
    from dataclasses import replace

    return replace(machine(key, **kwargs), spool_remaining_g=grams, spool_reserve_g=reserve)


HEAVY = JobNeeds(process="fdm", material="pla", extents_mm=(40, 40, 20), filament_g=50.0)


def test_a_spool_with_too_little_left_is_skipped():
    # a would win on the name; its spool holds 60 g, less the 20 g reserve: not the 50 g needed.
    chosen = choose_machine(HEAVY, [spooled("a", 60.0), spooled("b", 900.0)])
    assert chosen.key == "b"
    assert choose_machine(HEAVY, [spooled("a", 70.0), spooled("b", 900.0)]).key == "a"


def test_when_no_spool_can_finish_the_job_it_waits_and_is_not_rejected():
    with pytest.raises(
        NoMachineAvailable, match=r"a \(spool: 60 g free, 20 g reserve, needs 50 g\)"
    ):
        choose_machine(HEAVY, [spooled("a", 60.0)])
    assert plan_routes([HEAVY], [spooled("a", 60.0)], NOW) == {}


def test_a_job_that_needs_a_changeover_is_not_held_to_the_loaded_spool():
    petg = JobNeeds(process="fdm", material="petg", extents_mm=(40, 40, 20), filament_g=50.0)
    chosen = choose_machine(petg, [spooled("a", 5.0, loadable=("petg",))])
    assert chosen.key == "a"


def test_a_plan_draws_each_spool_down_by_the_jobs_it_places_there():
    jobs = [
        JobNeeds(process="fdm", material="pla", extents_mm=(40, 40, 20), filament_g=300.0, key=k)
        for k in ("1", "2")
    ]
    # b is far slower, but a's 500 g (20 g reserve) holds only one job of 300 g.
    plan = plan_routes(jobs, [spooled("a", 500.0), spooled("b", 5000.0, eta=36000.0)], NOW)
    assert plan == {"1": "a", "2": "b"}


def test_with_no_changeover_cost_the_machine_with_the_material_loaded_still_wins():
    machines = [machine("a", materials=("petg",), loadable=("pla",)), machine("b")]
    assert choose_machine(NEEDS, machines, changeover_s=0.0).key == "b"
    needs = JobNeeds(process="fdm", material="pla", extents_mm=(40, 40, 20), key="1")
    assert plan_routes([needs], machines, NOW, changeover_s=0.0) == {"1": "b"}
