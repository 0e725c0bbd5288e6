from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]  # where `python -m support.<module>` children run
