"""The bind guard, form by form: nothing binds beyond loopback without the bypass."""

from __future__ import annotations

import pytest

from duragraph_pprof.errors import BindRefused
from duragraph_pprof.guard import check_bind

V = "DURAGRAPH_PPROF_ADDR"
LOOP = "loopback"  # allowed without the bypass
PUBLIC = "public"  # refused, allowed with the bypass
BAD = "bad"  # refused even with the bypass

# (address, decision, host the listener binds)
FORMS = [
    ("127.0.0.1:6060", LOOP, "127.0.0.1"),
    ("127.0.0.2:6060", LOOP, "127.0.0.2"),
    ("127.255.255.254:1", LOOP, "127.255.255.254"),
    ("localhost:6060", LOOP, "127.0.0.1"),
    ("LOCALHOST:6060", LOOP, "127.0.0.1"),
    ("localhost.:6060", LOOP, "127.0.0.1"),
    ("LocalHost:0", LOOP, "127.0.0.1"),
    ("[::1]:6060", LOOP, "::1"),
    ("[0:0:0:0:0:0:0:1]:6060", LOOP, "::1"),
    ("127.1:6060", LOOP, "127.0.0.1"),
    ("2130706433:6060", LOOP, "127.0.0.1"),
    ("0x7f000001:6060", LOOP, "127.0.0.1"),
    ("0177.0.0.1:6060", LOOP, "127.0.0.1"),
    ("[::ffff:127.0.0.1]:6060", LOOP, "127.0.0.1"),
    ("127.0.0.1:0", LOOP, "127.0.0.1"),
    ("127.0.0.1:65535", LOOP, "127.0.0.1"),
    ("0.0.0.0:6060", PUBLIC, "0.0.0.0"),
    ("[::]:6060", PUBLIC, "::"),
    ("[::ffff:0.0.0.0]:6060", PUBLIC, "0.0.0.0"),
    ("0:6060", PUBLIC, "0.0.0.0"),
    ("10.0.0.5:6060", PUBLIC, "10.0.0.5"),
    ("192.168.1.10:6060", PUBLIC, "192.168.1.10"),
    ("172.16.0.1:6060", PUBLIC, "172.16.0.1"),
    ("8.8.8.8:6060", PUBLIC, "8.8.8.8"),
    ("[2001:db8::1]:6060", PUBLIC, "2001:db8::1"),
    ("[fe80::1%eth0]:6060", PUBLIC, "fe80::1%eth0"),
    ("169.254.1.1:6060", PUBLIC, "169.254.1.1"),
    ("255.255.255.255:6060", PUBLIC, "255.255.255.255"),
    (":6060", BAD, None),
    ("6060", BAD, None),
    ("0", BAD, None),
    ("", BAD, None),
    ("::", BAD, None),
    ("::1:6060", BAD, None),
    ("[::1]", BAD, None),
    ("[::1]6060", BAD, None),
    ("example.com:6060", BAD, None),
    ("localhost.example.com:6060", BAD, None),
    ("my-host:6060", BAD, None),
    ("127.0.0.1:-1", BAD, None),
    ("127.0.0.1:65536", BAD, None),
    ("127.0.0.1:abc", BAD, None),
    ("127.0.0.1:", BAD, None),
    ("127.0.0.1: 6060", BAD, None),
    ("127.0.0.1:6060 ", BAD, None),
    ("256.0.0.1:6060", BAD, None),
    ("lоcalhost:6060", BAD, None),  # Cyrillic о
    ("127.0.0.1\n:6060", BAD, None),
    ("a" * 10000 + ":6060", BAD, None),
    ("unix:relative.sock", BAD, None),
]


@pytest.mark.parametrize("address,decision,host", FORMS)
def test_guard_form(address, decision, host):
    if decision == LOOP:
        for bypass in (False, True):
            target = check_bind(address, variable=V, allow_public=bypass)
            assert (target.host, target.public) == (host, False)
        return
    with pytest.raises(BindRefused) as refused:
        check_bind(address, variable=V, allow_public=False)
    message = str(refused.value)
    assert message.startswith(V + "="), message
    assert len(message) < 400 and "\n" not in message
    if decision == PUBLIC:
        assert "DURAGRAPH_PPROF_ALLOW_PUBLIC=true" in message
        target = check_bind(address, variable=V, allow_public=True)
        assert (target.host, target.public) == (host, True)
    else:
        with pytest.raises(BindRefused):
            check_bind(address, variable=V, allow_public=True)


def test_table_is_wide():
    assert len(FORMS) >= 40


def test_unix_socket_is_allowed_without_the_bypass():
    target = check_bind("unix:/run/app/pprof.sock", variable=V, allow_public=False)
    assert target.path == "/run/app/pprof.sock" and not target.public


def test_the_variable_is_named_in_the_refusal():
    with pytest.raises(BindRefused, match="^DURAGRAPH_PPROF_GRPC_ADDR="):
        check_bind("0.0.0.0:1", variable="DURAGRAPH_PPROF_GRPC_ADDR", allow_public=False)
