"""The test toolkit: code every test directory shares (no tests here).

* ``waiting`` — the one deadline loop: ``poll_until`` (plain code), ``eventually``
  (asyncio; wakes on a fleet's changes when given one), ``wait_for`` (Textual Pilot),
  ``GiveUp``, ``Collector``.
* ``backend`` — a real ``loco-backend`` process (``BackendProcess``, ``.static``).
* ``supervisor`` — real ``loco-emulator run`` processes on the test image.
* ``fake_emulator`` — fake supervisors in the test's loop (``FakeEmulators``,
  ``write_static``); ``fakefleet`` — the same in a process of their own (``FakeFleet``).
* ``console`` — the console's settings, screen text and subcommands.
* ``tmux`` — a real terminal (``Tmux``; the ``term`` fixture is in tests/conftest.py).
* ``builders`` — deterministic wire models (instances, health, fleet lists).
* ``processes``, ``ports``, ``paths``, ``serving`` — processes, free ports, where things
  are, serving an ASGI app in the test's loop.

It imports no test module (an import contract in pyproject.toml says so), and no test
module imports another: what two tests share belongs here.
"""
