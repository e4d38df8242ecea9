import pytest

from microfactory.errors import Rejected
from production.routing import JobNeeds, MachineFacts, NoMachineAvailable, choose_machine


def machine(key, *, state="idle", volume=(250, 210, 220), materials=("pla",), queued=0, model="MK4"):
    return MachineFacts(
        key=key, name=key, site="north", model=model, process="fdm", state=state,
        build_volume_mm=volume, nozzle_mm=0.4, flavour="marlin",
        materials=frozenset(materials), queued_jobs=queued,
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
    assert choose_machine(needs, [machine("voron", model="Voron"), machine("x", queued=5)]).key == "x"
