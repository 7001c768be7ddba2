"""Contributor tools, run from a source checkout and left out of the wheel: the benchmarks
(``make bench``), the schema dump (``make schema``), the schema reference (``make docs``) and the
release checksums. The runtime (client, models, listener, migrations, CLI, local server, demo,
pytest plugin) never imports them."""
