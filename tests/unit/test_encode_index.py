"""encode/index.py: the /debug/pprof/ index page, byte for byte against a golden file, with Go's
escaping."""

from __future__ import annotations

from support.golden import assert_golden

from duragraph_pprof.encode.index import escape, index_page

ROWS = [
    ("allocs", 12, "A sampling of all past memory allocations."),
    ("cmdline", 0, "The command line of the current program."),
    ("goroutine", 7, "Stack traces of all current goroutines. Use debug=2 as a query parameter."),
    ("heap", 12, "Live objects <by stack> & \"gc\" 'param'."),
]
NOTES = ("CPU and wall: the native sampler.", "heap: sampled, one per 524288 bytes <512 KiB>.")


def test_index_page_matches_golden():
    assert_golden("index.html", index_page(ROWS, NOTES))


def test_index_page_without_notes_matches_golden():
    assert_golden("index_no_notes.html", index_page(ROWS[:1]))


def test_escape_is_gos_html_escape_string():
    assert escape("<a href='x'>\"&\"</a>") == "&lt;a href=&#39;x&#39;&gt;&#34;&amp;&#34;&lt;/a&gt;"


def test_a_name_is_quoted_in_the_link_and_escaped_in_the_text():
    page = index_page([("we ird<&>", 1, "d")])
    assert "<a href='we%20ird%3C%26%3E?debug=1'>we ird&lt;&amp;&gt;</a>" in page
    assert "<div class=profile-name>we ird&lt;&amp;&gt;: </div> d</li>" in page
