"""`manage.py` for the served test project (used by the runasgi test)."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, this file puts tests/ on sys.path; the project needs its parent.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
