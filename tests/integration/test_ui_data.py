"""The flame-graph page's routes without a browser: its files and headers, its JSON (decoded
from the very bytes the pprof endpoint serves), the token, and what the source view may read."""

from __future__ import annotations

import json
from functools import partial

from support import listener
from support.listener import fetch
from support.profiles import parse_pprof

from duragraph_pprof.ui import decode
from duragraph_pprof.ui.routes import CSP
from duragraph_pprof.ui.store import MAX_PROFILES, Store, Stored

UI = "/debug/pprof/ui/"
TOKEN = "ui-token-1234"


serving = partial(listener.serving, heap="exact")


def test_page_and_its_files_are_served_with_a_strict_policy():
    with serving() as profiler:
        status, headers, page = fetch(profiler, UI)
        assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8")
        for name, kind in (("app.js", "text/javascript"), ("model.js", "text/javascript"),
                           ("view.js", "text/javascript"), ("app.css", "text/css")):
            status, head, _ = fetch(profiler, UI + name)
            assert (status, head["content-type"].split(";")[0]) == (200, kind), name
            assert head["content-security-policy"] == CSP
        assert headers["content-security-policy"] == CSP
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert fetch(profiler, "/debug/pprof/ui")[0:2][0] == 301
        assert fetch(profiler, "/debug/pprof/ui")[1]["location"] == "ui/"
        for missing in ("nope.js", "../render.py", "static/app.js", "api/nope"):
            assert fetch(profiler, UI + missing)[0] == 404, missing
        _, _, index = fetch(profiler, "/debug/pprof/")
    assert b"<script" not in page.replace(b'<script type="module" src="app.js"></script>', b"")
    assert b"style=" not in page and b"http" not in page  # nothing inline, nothing elsewhere
    assert "script-src 'self'" in CSP and "require-trusted-types-for 'script'" in CSP
    assert b'<a href="ui/">' in index


def test_profile_is_the_endpoint_s_own_bytes_kept_for_download_and_source():
    with serving() as profiler:
        keep = [bytearray(1 << 16) for _ in range(20)]  # traced: made after start
        status, headers, body = fetch(profiler, UI + "api/profile?name=heap")
        assert (status, headers["content-type"]) == (200, "application/octet-stream")
        key = headers["x-profile-id"]
        status, headers, raw = fetch(profiler, UI + "api/raw?id=" + key)
    assert status == 200 and headers["content-disposition"] == 'attachment; filename="heap.pb.gz"'
    assert raw == body
    parsed = parse_pprof(raw)
    assert [(parsed.string_table[t.type], parsed.string_table[t.unit])
            for t in parsed.sample_type] == [("inuse_objects", "count"), ("inuse_space", "bytes")]
    assert sum(s.value[1] for s in parsed.sample) >= len(keep) << 16
    assert __file__ in decode.files(parsed)
    del keep


def test_the_api_needs_the_token_and_the_page_does_not():
    with serving(token=TOKEN) as profiler:
        assert fetch(profiler, UI)[0] == 200  # the page holds no data: it asks for the token
        assert fetch(profiler, UI + "app.js")[0] == 200
        for path in ("api/profiles", "api/profile?name=heap", "api/raw?id=x", "api/source"):
            status, headers, body = fetch(profiler, UI + path)
            assert status == 401 and headers["www-authenticate"].startswith("Bearer"), path
            assert TOKEN.encode() not in body
        good = {"Authorization": f"Bearer {TOKEN}"}
        status, _, body = fetch(profiler, UI + "api/profiles", good)
        assert status == 200
        names = {p["name"] for p in json.loads(body)["profiles"]}
        assert "heap" in names and "profile" in names and not names & {"cmdline", "symbol", "trace"}
        assert fetch(profiler, "/debug/pprof/heap")[0] == 401  # Go's paths: as before


def test_source_view_reads_only_files_the_profile_names(tmp_path):
    with serving() as profiler:
        status, headers, body = fetch(profiler, UI + "api/profile?name=goroutine")
        answer = {"id": headers["x-profile-id"]}
        files = decode.files(decode.parse(body))
        mine = __file__
        assert mine in files  # this test's own thread is in the goroutine profile
        status, _, body = fetch(profiler, f"{UI}api/source?id={answer['id']}&file={mine}")
        assert status == 200
        lines = json.loads(body)["lines"]
        assert lines[0].startswith('"""The flame-graph page')
        secret = tmp_path / "secret.txt"
        secret.write_text("do not serve")
        for other in (str(secret), "/etc/passwd", mine + "x"):
            status, _, body = fetch(profiler, f"{UI}api/source?id={answer['id']}&file={other}")
            assert status == 404 and b"do not serve" not in body and b"root:" not in body
        assert fetch(profiler, f"{UI}api/source?id=nope&file={mine}")[0] == 404


def test_bad_profile_requests_get_the_endpoint_s_own_errors():
    with serving(heap="off") as profiler:
        status, _, body = fetch(profiler, UI + "api/profile?name=heap")
        assert status == 500 and body.startswith(b"heap profiling is off")
        status, _, body = fetch(profiler, UI + "api/profile?name=profile&seconds=abc")
        assert status == 400
        assert body == b'invalid value for "seconds" - must be a positive integer\n'
        for name in ("cmdline", "trace", "nope"):
            assert fetch(profiler, UI + f"api/profile?name={name}")[0] == 404, name


def test_store_keeps_the_newest_profiles_within_its_bounds():
    store = Store()
    keys = [store.add(Stored("heap", b"x", frozenset())) for _ in range(MAX_PROFILES + 3)]
    assert store.get(keys[0]) is None and store.get(keys[-1]) is not None
    assert sum(store.get(k) is not None for k in keys) == MAX_PROFILES
