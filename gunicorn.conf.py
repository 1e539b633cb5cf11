"""Gunicorn settings for Facade: `gunicorn -c gunicorn.conf.py wsgi:app` (make run, the image).

Everything lives in `facade/gunicorn_conf.py`, which `facade serve` loads too, so both serve
with the same settings, every one read from a FACADE_* variable validated by
`facade/settings.py` before any worker boots.
"""

# gunicorn reads this module's globals: every setting and hook, re-exported as they are.
from facade.gunicorn_conf import *  # noqa: F403 -- gunicorn looks the names up here
