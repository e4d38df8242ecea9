"""The manager dashboard's figures (issue #15.2): work in progress, waiting and the
bottleneck, machine utilisation and OEE with typed losses, scrap trends, lead times and
on-time delivery, throughput.

Each figure is a function of a `Scope` (which jobs and machines) and a `Period`, computed by
the database from JobEvents, MachineEvents and jobs (aggregate, annotate, Window): no loop
over jobs in Python. The one Python pass is over the machines' state intervals of the period
(a few per machine and hour), to cut them at day boundaries and at the sites' opening hours.

- period.py   the period, its days and weeks, parsed from a request
- figures.py  the figures, as frozen rows
- export.py   any list of rows as CSV
"""
