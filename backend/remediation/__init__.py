"""Fleet-level automatic recovery: a bounded ladder of actions, deterministic, visible.

:mod:`.profiles` says what is bad for each machine profile and how long to wait;
:mod:`.policy` is the ladder as a pure state machine; the engine (wired into the
backend's runtime) feeds it the fleet, carries out its decisions when this replica leads,
and reports every decision. docs/recovery.md is the operator's guide.
"""
