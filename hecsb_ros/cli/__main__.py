"""``python -m hecsb_ros.cli``: the ``hecsb`` command (:mod:`hecsb_ros.cli.hecsb`) without
installing it."""

from hecsb_ros.cli.hecsb import main

raise SystemExit(main())
