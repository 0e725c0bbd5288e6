"""Configuration: overrides > environment > mode defaults; a bad value is an error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

import duragraph_pprof
from duragraph_pprof.config import ENV, Config, load_config
from duragraph_pprof.errors import BindRefused, ConfigError


def test_mode_defaults():
    dev, serve = load_config({}, "dev"), load_config({}, "serve")
    assert (dev.http_addr, dev.grpc_addr, dev.heap) == ("127.0.0.1:6060", "127.0.0.1:6061",
                                                        "sampled")
    assert (serve.http_addr, serve.grpc_addr, serve.heap) == (None, None, "sampled")


def test_environment_then_overrides():
    env = {"DURAGRAPH_PPROF_ADDR": "127.0.0.1:7000", "DURAGRAPH_PPROF_SAMPLE_HZ": "50"}
    assert load_config(env, "serve").http_addr == "127.0.0.1:7000"
    config = load_config(env, "serve", sample_hz=10)
    assert (config.sample_hz, config.http_addr) == (10, "127.0.0.1:7000")
    assert load_config({"DURAGRAPH_PPROF_ADDR": "off"}, "dev").http_addr is None


@pytest.mark.parametrize("value,expected", [("true", True), ("TRUE", True), ("1", True),
                                            ("false", False), ("0", False), ("", False)])
def test_allow_public_is_parsed_strictly(value, expected):
    assert load_config({"DURAGRAPH_PPROF_ALLOW_PUBLIC": value}).allow_public is expected


@pytest.mark.parametrize("variable,value", [
    ("DURAGRAPH_PPROF_ALLOW_PUBLIC", "maybe"),
    ("DURAGRAPH_PPROF_ALLOW_PUBLIC", "ture"),
    ("DURAGRAPH_PPROF_SAMPLE_HZ", "0"),
    ("DURAGRAPH_PPROF_SAMPLE_HZ", "fast"),
    ("DURAGRAPH_PPROF_MAX_SECONDS", "-5"),
    ("DURAGRAPH_PPROF_PUSH_INTERVAL", "nan"),
    ("DURAGRAPH_PPROF_CPU_BUDGET", "2"),
    ("DURAGRAPH_PPROF_HEAP", "sometimes"),
    ("DURAGRAPH_PPROF_HEAP_DEPTH", "1000"),
    ("DURAGRAPH_PPROF_FUTEX_SLOTS", "100"),
    ("DURAGRAPH_PPROF_FUTEX_SLOTS", "8"),
])
def test_bad_values_are_errors_that_name_variable_and_value(variable, value):
    with pytest.raises(ConfigError) as error:
        load_config({variable: value})
    assert error.value.variable == variable
    assert str(error.value).startswith(f"{variable}={value!r}")


def test_every_variable_sets_a_field_and_is_in_the_readme():
    fields = set(Config.__dataclass_fields__)
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    for variable, (field, _, _) in ENV.items():
        assert field in fields
        assert f"`{variable}`" in readme, variable


def test_unknown_override_is_an_error():
    with pytest.raises(ConfigError):
        load_config({}, "dev", no_such_setting=1)


def test_start_refuses_a_public_bind_before_starting_anything():
    with pytest.raises(BindRefused, match="DURAGRAPH_PPROF_ADDR='0.0.0.0:0'"):
        duragraph_pprof.start("serve", environ={"DURAGRAPH_PPROF_ADDR": "0.0.0.0:0"})


def test_start_reports_the_bound_addresses_and_stop_is_idempotent():
    profiler = duragraph_pprof.start("serve", environ={}, http_addr="127.0.0.1:0",
                                     grpc_addr="127.0.0.1:0")
    try:
        assert profiler.http_address[0] == "127.0.0.1" and profiler.http_address[1] > 0
        assert profiler.grpc_address[1] > 0
    finally:
        profiler.stop()
        profiler.stop()


def test_public_api():
    assert duragraph_pprof.__all__ == sorted(duragraph_pprof.__all__)
    assert set(duragraph_pprof.__all__) == {"BindRefused", "ConfigError", "DuragraphPprofError",
                                            "Profiler", "RequestError", "start"}


@pytest.mark.parametrize("name,value", [("allow_public", "false"), ("allow_public", "maybe"),
                                        ("sample_hz", 0), ("http_threads", 0),
                                        ("cpu_budget", 5.0), ("heap", "sometimes")])
def test_arguments_are_parsed_like_the_environment(name, value):
    if (name, value) == ("allow_public", "false"):
        assert load_config({}, "serve", allow_public=value).allow_public is False
        with pytest.raises(BindRefused):
            duragraph_pprof.start("serve", environ={}, http_addr="0.0.0.0:0", allow_public=value)
        return
    with pytest.raises(ConfigError) as error:
        load_config({}, "serve", **{name: value})
    assert error.value.variable == name


def test_arguments_keep_their_types():
    config = load_config({}, "dev", http_addr=None, allow_public=True, sample_hz=50,
                         cpu_budget=0.02, token="t")
    assert (config.http_addr, config.allow_public, config.sample_hz, config.cpu_budget,
            config.token) == (None, True, 50, 0.02, "t")
