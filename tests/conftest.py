import os
import sys

# Tests import their helpers as `tests.registry`; the repository root must be importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
