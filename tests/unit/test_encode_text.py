"""encode/text.py: the legacy `debug=1` profiles and the `debug=2` goroutine dump, byte for byte
against golden files, and the synthetic addresses that /symbol resolves."""

from __future__ import annotations

import re

from support import snapshots
from support.golden import assert_golden

from duragraph_pprof.core.snapshot import Frame
from duragraph_pprof.encode import text


# -- debug=1 -----------------------------------------------------------------------------------
def test_goroutine_debug1_matches_golden():
    assert_golden("goroutine_debug1.txt", text.count_profile("goroutine", snapshots.goroutine_stacks()))


def test_threadcreate_debug1_of_nothing_matches_golden():
    assert_golden("threadcreate_debug1_empty.txt", text.count_profile("threadcreate", []))


def test_sampled_heap_debug1_matches_golden():
    assert_golden("heap_sampled_debug1.txt",
                  text.heap_profile(snapshots.sampled_heap(), None, 524_288))


def test_exact_heap_debug1_matches_golden():
    assert_golden("heap_exact_debug1.txt",
                  text.heap_profile(snapshots.exact_heap(), (123_456, 789_012)))


def test_mutex_debug1_matches_golden():
    assert_golden("mutex_debug1.txt", text.contention_profile("mutex", snapshots.contention(5)))


def test_block_debug1_matches_golden():
    assert_golden("block_debug1.txt", text.contention_profile("block", snapshots.contention()))


def test_count_profile_groups_equal_stacks_largest_first():
    out = text.count_profile("goroutine", snapshots.goroutine_stacks())
    heads = [line.split(" @")[0] for line in out.splitlines() if " @" in line]
    assert out.startswith("goroutine profile: total 5\n")
    assert heads == ["3", "1", "1"]


def test_exact_heap_header_adds_one_so_pprof_sees_four_columns():
    head = text.heap_profile(snapshots.exact_heap(), (0, 0)).splitlines()[0]
    assert head == "heap profile: 44: 8256 [44: 8257] @ heap/2"


def test_frame_columns_line_up_on_tab_stops_within_a_record():
    out = text.heap_profile(snapshots.sampled_heap(), None, 524_288)
    for record in out.split("\n\n"):
        rows = [line.expandtabs(8) for line in record.splitlines() if line.startswith("#\t")]
        starts = {tuple(m.start() for m in re.finditer(r"\S+", row)) for row in rows}
        assert len(starts) <= 1, record  # pc, function and file:line each in one column
        assert all(start % 8 == 0 for start in next(iter(starts), ()))


# -- debug=2 -----------------------------------------------------------------------------------
def test_goroutine_dump_matches_golden():
    assert_golden("goroutine_debug2.txt", text.goroutine_dump(snapshots.goroutines()))


def test_dump_headers_stay_one_matchable_line():
    headers = [line for line in text.goroutine_dump(snapshots.goroutines()).splitlines()
               if line.startswith("goroutine ")]
    assert len(headers) == 4
    assert all(re.fullmatch(r'goroutine \d+ \[[^\[\]]*\]:', h) for h in headers)
    assert headers[1] == 'goroutine 2 [sleep, thread "worker?1? ?x??"]:'


# -- addresses and /symbol ---------------------------------------------------------------------
def test_addresses_are_stable_and_sit_inside_their_slot():
    burn = snapshots.BURN
    assert text.address(burn) == text.address(Frame(*(getattr(burn, f) for f in
                                                       ("function", "filename", "line",
                                                        "start_line"))))
    assert text.address(burn) % 16 == 8
    assert text.address(burn) != text.address(snapshots.BURN_LOOP)


def test_symbols_resolve_the_address_and_the_address_minus_one():
    table = text.symbols(snapshots.cpu())
    for frame in (snapshots.BURN, snapshots.HANDLE, snapshots.WAIT):
        pc = text.address(frame)
        assert text.lookup(table, pc) == frame.function
        assert text.lookup(table, pc - 1) == frame.function
    assert text.lookup(table, 0x10) is None
    assert len(table) == 6
