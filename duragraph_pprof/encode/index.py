"""The /debug/pprof/ index page, shaped like Go's (counts, links, descriptions)."""

from __future__ import annotations

from urllib.parse import quote

_ESCAPES = str.maketrans({"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&#39;", '"': "&#34;"})


def escape(text: str) -> str:
    """Go's html.EscapeString (Python's html.escape writes &#x27; and &quot; instead)."""
    return text.translate(_ESCAPES)


def index_page(rows: list[tuple[str, int, str]], notes: tuple[str, ...] = ()) -> str:
    """rows: (name, count, description), sorted by name; notes: lines about how the profiles are
    made (which sampler), shown under Go's header."""
    table = "".join(
        f"<tr><td>{count}</td><td><a href='{quote(name)}?debug=1'>{escape(name)}</a></td></tr>\n"
        for name, count, _ in rows
    )
    descriptions = "".join(
        f"<li><div class=profile-name>{escape(name)}: </div> {escape(text)}</li>\n"
        for name, _, text in rows
    )
    about = "".join(f"<p>{escape(note)}</p>\n" for note in notes)
    return (
        "<html>\n<head>\n<title>/debug/pprof/</title>\n<style>\n.profile-name{\n"
        "\tdisplay:inline-block;\n\twidth:6rem;\n}\n</style>\n</head>\n<body>\n/debug/pprof/\n"
        "<br>\n<p>Set debug=1 as a query parameter to export in legacy text format</p>\n"
        f"{about}<br>\n"
        "Types of profiles available:\n<table>\n<thead><td>Count</td><td>Profile</td></thead>\n"
        f"{table}</table>\n<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n<br>\n"
        "<a href=\"ui/\">flame graphs, top and diffs in the browser</a>\n<br>\n"
        f"<p>\nProfile Descriptions:\n<ul>\n{descriptions}</ul>\n</p>\n</body>\n</html>\n"
    )
