"""Fault injection against a real cluster, Jepsen style (``livespace bench chaos``, and the
nemesis test in ``tests/integration/test_nemesis.py``).

- :mod:`bench.chaos.services`: a PostgreSQL and a Redis of the run's own on free ports,
  and livespace nodes to kill, pause, drain and restart;
- :mod:`bench.chaos.workload`: writers (mutations with refs, retried until acknowledged),
  readers (every durable event, resuming with ``since``) and lurkers (presence only),
  each recording its history;
- :mod:`bench.chaos.nemesis`: the faults, one at a time, every few seconds;
- :mod:`bench.chaos.checker`: pure checks over the histories and the final log.
"""
