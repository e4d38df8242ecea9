"""Routing time and schedule quality of production.routing.plan_routes (pure: no database).

For 1k and 10k ready jobs over 10 and 100 machines, reports the median time of a full plan
and the plan's makespan against a simple lower bound:

    lower bound = max(total work / capacity of the machines able to take it,
                      the longest single job)

computed per material group (a job can only go to machines with its material loaded or
loadable) and taking the largest. Changeovers are counted in the makespan, not in the bound,
so the ratio shows what both the heuristic and the changeovers cost.

    .venv/bin/python benchmarks/routing.py [--repeats 5] [--seed 8]
"""

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from production.routing import JobNeeds, MachineFacts, can_make, plan_routes  # noqa: E402

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
MATERIALS = ["pla", "petg", "abs", "tpu"]
CHANGEOVER_S = 15 * 60
MODELS = [  # (model, build volume)
    ("Prusa MK4", (250, 210, 220)),
    ("Prusa MINI+", (180, 180, 180)),
    ("Voron 350", (350, 350, 330)),
]


def make_machines(count: int, rng: random.Random) -> list[MachineFacts]:
    machines = []
    for i in range(count):
        model, volume = MODELS[i % len(MODELS)]
        loaded = MATERIALS[i % len(MATERIALS)]
        loadable = frozenset(rng.sample(MATERIALS, 2)) - {loaded}
        machines.append(
            MachineFacts(
                key=f"m{i:03d}",
                name=f"M{i:03d}",
                site="north",
                model=model,
                process="fdm",
                state="offline" if i % 17 == 16 else "idle",
                build_volume_mm=volume,
                nozzle_mm=0.4,
                flavour="marlin",
                materials=frozenset({loaded}),
                queued_jobs=0,
                queue_limit=0,
                queue_eta_s=0.0,
                loadable=loadable,
            )
        )
    return machines


def make_jobs(count: int, rng: random.Random) -> list[JobNeeds]:
    jobs = []
    for i in range(count):
        size = rng.choice(
            [(20, 20, 10), (60, 40, 30), (150, 150, 40), (200, 170, 150), (300, 300, 50)]
        )
        due = NOW + timedelta(hours=rng.randint(2, 96)) if rng.random() < 0.7 else None
        jobs.append(
            JobNeeds(
                process="fdm",
                material=rng.choices(MATERIALS, weights=[5, 3, 2, 1])[0],
                extents_mm=size,
                key=f"j{i:05d}",
                estimated_time_s=rng.randint(600, 4 * 3600),
                due=due,
                priority=rng.choice([0, 1, 1, 1, 2, 3]),
            )
        )
    return jobs


def makespan_s(
    plan: dict[str, str], jobs: dict[str, JobNeeds], machines: list[MachineFacts]
) -> float:
    """When the last machine finishes, replaying the plan with its changeovers (plan_routes
    fills its dict in placement order, which is each machine's queue order)."""
    busy = {m.key: 0.0 for m in machines}
    loaded = {m.key: m.materials for m in machines}
    for job_key, machine_key in plan.items():
        job = jobs[job_key]
        if job.material not in loaded[machine_key]:
            busy[machine_key] += CHANGEOVER_S
            loaded[machine_key] = frozenset({job.material})
        busy[machine_key] += job.estimated_time_s
    return max(busy.values())


def lower_bound_s(jobs: list[JobNeeds], machines: list[MachineFacts]) -> float:
    """max over materials of (work of that material / machines able to make it), and the
    longest job: no schedule can finish sooner."""
    available = [m for m in machines if m.state == "idle"]
    bound = max(job.estimated_time_s for job in jobs)
    for material in MATERIALS:
        group = [job for job in jobs if job.material == material]
        if not group:
            continue
        capable = {m.key for job in group for m in available if can_make(job, m)}
        if capable:
            bound = max(bound, sum(job.estimated_time_s for job in group) / len(capable))
    total_capable = {m.key for job in jobs for m in available if can_make(job, m)}
    return max(bound, sum(job.estimated_time_s for job in jobs) / len(total_capable))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    print(
        f"{'jobs':>6} {'machines':>8} {'median plan time':>17} {'placed':>7} "
        f"{'makespan':>9} {'lower bound':>11} {'ratio':>6}"
    )
    for job_count in (1_000, 10_000):
        for machine_count in (10, 100):
            rng = random.Random(args.seed)
            machines = make_machines(machine_count, rng)
            jobs = make_jobs(job_count, rng)
            times = []
            plan: dict[str, str] = {}
            for _ in range(args.repeats):
                started = time.perf_counter()
                plan = plan_routes(jobs, machines, NOW, changeover_s=CHANGEOVER_S)
                times.append(time.perf_counter() - started)
            placed = [job for job in jobs if job.key in plan]
            span = makespan_s(plan, {job.key: job for job in jobs}, machines)
            bound = lower_bound_s(placed, machines)
            print(
                f"{job_count:>6} {machine_count:>8} {statistics.median(times) * 1000:>14.1f} ms "
                f"{len(plan):>7} {span / 3600:>7.1f} h {bound / 3600:>9.1f} h {span / bound:>6.2f}"
            )


if __name__ == "__main__":
    main()
