"""benchmarks/web.py's settings: the product's, with the floors' URLconf (web_floors.py)."""

from microfactory.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.web_floors"
