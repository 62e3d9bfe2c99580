"""The test run's settings: config.settings as on a developer's machine, DEBUG on
unless the environment says otherwise (the settings default it off, which requires a
SECRET_KEY and ALLOWED_HOSTS). Set in os.environ, so the servers and workers that
tests start read the same."""

import os

os.environ.setdefault("DEBUG", "1")

from config.settings import *  # noqa: F403
