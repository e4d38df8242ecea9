"""Planning and writing at once: paths.iter_layers in a forked child process, G-code in this one.

Layer plans depend on each other only through where the nozzle ends (the next layer starts
there) and where the layer below has sparse infill, so they are planned in order; but writing
layer n needs nothing of layer n + 1. A forked child plans every layer and hands each back
through a pipe as soon as it is planned, while this process writes the G-code of the ones it
has: the two halves of the work (~45 % planning, ~35 % writing) run side by side on two
cores. The plans are the very ones paths.plan_layers makes (same code, same order, the same
inputs inherited through fork), so the G-code is byte for byte the same.

The child is forking.fork's (a plain fork and a pipe: see there why, and how it stays
harmless). If it fails in any way (killed, out of memory), the layers it did not deliver are
planned here, in this process: slower, never different.

Only for POSIX systems with fork, and parts with at least MIN_LAYERS layers (below that the
fork and the pipe cost more than they save); MF_TOOLPATH_PROCESSES=1 in the environment
turns it off (one process does everything, as before).
"""

from collections.abc import Iterator, Sequence
from typing import IO

from production.toolpath import forking, paths
from production.toolpath.paths import LayerPlan, Path
from production.toolpath.profile import FdmProfile
from production.toolpath.slicing import Slice

MIN_LAYERS = 12


def enabled(layer_count: int) -> bool:
    return layer_count >= MIN_LAYERS and forking.allowed()


def planned_layers(
    slices: Sequence[Slice], profile: FdmProfile, *, start: tuple[float, float]
) -> Iterator[LayerPlan]:
    """paths.plan_layers(slices, profile, start=start), one layer at a time, planned in a
    child process when `enabled`: each layer comes as soon as the child has planned it."""
    if not enabled(len(slices)):
        yield from paths.iter_layers(slices, profile, start=start)
        return

    def work(stream: IO[bytes]) -> None:
        first: dict[int, int] = {}  # id of a paths tuple -> the first layer that had it
        kept: list[tuple[Path, ...]] = []  # keeps those ids from being reused
        for index, plan in enumerate(paths.iter_layers(slices, profile, start=start)):
            earlier = first.setdefault(id(plan.paths), index)
            if earlier != index:
                forking.send(stream, ("same", earlier))
            else:
                kept.append(plan.paths)
                forking.send(stream, ("paths", plan.paths))  # this layer can be written now
        forking.send(stream, ("done", len(slices)))

    pid, stream = forking.fork(work)
    received: list[tuple[Path, ...]] = []
    finished = False
    try:
        with stream:
            for layer_paths in _receive(stream, received):
                slice_ = slices[len(received) - 1]
                yield LayerPlan(slice_.z_mm, slice_.height_mm, slice_.region, layer_paths)
        finished = True
    finally:
        stream.close()
        forking.reap(pid, finished=finished)
    if len(received) < len(slices):
        # The child failed: plan again here and hand over what it did not.
        for index, plan in enumerate(paths.iter_layers(slices, profile, start=start)):
            if index >= len(received):
                yield plan


def _receive(stream: IO[bytes], received: list[tuple[Path, ...]]) -> Iterator[tuple[Path, ...]]:
    """Each layer's paths as the child sends them, until it says it is done or the pipe ends.
    A layer whose paths are those of an earlier one (paths.iter_layers reuses them on
    repeating layers) comes as that layer's index: the same tuple here too, which the
    G-code writer recognises."""
    while True:
        try:
            kind, value = forking.receive(stream)
        except EOFError:
            return  # the child died: the caller plans the rest itself
        if kind == "done":
            return
        layer_paths = received[value] if kind == "same" else value
        received.append(layer_paths)
        yield layer_paths
