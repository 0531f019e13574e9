"""Go `flag` package rules (pynats_server/goflags.py); the expected errors are the Go binary's
words (checked against nats-server 2.14.0)."""

from __future__ import annotations

import pytest

from pynats_server.goflags import Flag, FlagError, parse, parse_bool, parse_int

FLAGS = [
    Flag(("p", "port"), "int", "port"),
    Flag(("a", "addr", "net"), "str", "host"),
    Flag(("D", "debug"), "bool", "debug"),
    Flag(("V", "trace"), "bool", "trace"),
    Flag(("DV",), "bool", "dv"),
    Flag(("cluster",), "str", "cluster"),
]


def values(argv: list[str]) -> dict[str, object]:
    return parse(argv, FLAGS).values


def error(argv: list[str]) -> str:
    with pytest.raises(FlagError) as ei:
        parse(argv, FLAGS)
    return str(ei.value)


def test_single_and_double_dash_are_the_same() -> None:
    assert values(["-p", "4222"]) == values(["--p", "4222"]) == values(["--port", "4222"]) == {"port": 4222}
    assert values(["-cluster", "nats://h:1"]) == values(["--cluster", "nats://h:1"]) == {"cluster": "nats://h:1"}


def test_value_forms() -> None:
    assert values(["-p=5"]) == {"port": 5}
    assert values(["--p=5"]) == {"port": 5}
    assert values(["-p", "5"]) == {"port": 5}
    assert values(["-a=x=y"]) == {"host": "x=y"}
    assert values(["-a="]) == {"host": ""}
    assert values(["-a", "-p"]) == {"host": "-p"}  # a string flag takes the next word, whatever it is


def test_aliases_and_last_wins() -> None:
    p = parse(["--addr", "a", "--net", "b", "-p", "1", "-port", "2"], FLAGS)
    assert p.values == {"host": "b", "port": 2}
    assert p.given_names["host"] == "net"


def test_bool_forms() -> None:
    assert values(["-D"]) == {"debug": True}
    assert values(["-D=false"]) == {"debug": False}
    assert values(["--D=true"]) == {"debug": True}
    for t in ("1", "t", "T", "TRUE", "true", "True"):
        assert values([f"-D={t}"]) == {"debug": True}
    for f in ("0", "f", "F", "FALSE", "false", "False"):
        assert values([f"-D={f}"]) == {"debug": False}
    # `-D false` is not a value: "false" is the first non-flag argument.
    p = parse(["-D", "false", "-V"], FLAGS)
    assert p.values == {"debug": True}
    assert p.args == ["false", "-V"]


def test_combined_flag_is_one_name() -> None:
    assert values(["-DV"]) == {"dv": True}


def test_parse_stops_at_first_non_flag() -> None:
    p = parse(["-p", "1", "run", "-D"], FLAGS)
    assert p.values == {"port": 1}
    assert p.args == ["run", "-D"]
    p = parse(["-", "-D"], FLAGS)  # a lone dash is not a flag
    assert p.values == {} and p.args == ["-", "-D"]


def test_double_dash_ends_flags() -> None:
    p = parse(["-D", "--", "-p", "1"], FLAGS)
    assert p.values == {"debug": True}
    assert p.args == ["-p", "1"]


def test_set_flags_in_order() -> None:
    p = parse(["-V", "-p", "1", "-D"], FLAGS)
    assert p.set_flags == ["trace", "port", "debug"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-x"], "flag provided but not defined: -x"),
        (["--bogus"], "flag provided but not defined: -bogus"),
        (["-bogus=1"], "flag provided but not defined: -bogus"),
        (["-p"], "flag needs an argument: -p"),
        (["-a"], "flag needs an argument: -a"),
        (["-p", "abc"], 'invalid value "abc" for flag -p: parse error'),
        (["-p="], 'invalid value "" for flag -p: parse error'),
        (["-p", "99999999999999999999"], 'invalid value "99999999999999999999" for flag -p: value out of range'),
        (["-D=maybe"], 'invalid boolean value "maybe" for -D: parse error'),
        (["-D="], 'invalid boolean value "" for -D: parse error'),
        (["-D=yes"], 'invalid boolean value "yes" for -D: parse error'),
        (["---p", "1"], "bad flag syntax: ---p"),
        (["-=x"], "bad flag syntax: -=x"),
        (["--=x"], "bad flag syntax: --=x"),
    ],
)
def test_errors_worded_like_go(argv: list[str], message: str) -> None:
    assert error(argv) == message


# strconv.ParseInt(s, 0, 64), as the Go binary accepts it for `-p`.
INTS_OK = [
    ("0", 0), ("-0", 0), ("00", 0), ("07", 7), ("0x1f", 31), ("0X1F", 31), ("0b101", 5), ("0o17", 15),
    ("1_000", 1000), ("0_7", 7), ("0x_1f", 31), ("0x1_f", 31), ("+5", 5), ("-1", -1), ("4222", 4222),
    ("9223372036854775807", 9223372036854775807), ("-9223372036854775808", -9223372036854775808),
]  # fmt: skip
INTS_BAD = ["08", "0x", "0B2", "0o", "_1", "1_", "1__0", " 1", "1 ", "\u0661", "1e3", "", "+", "-", "0x1g", "1.0"]
INTS_RANGE = ["9223372036854775808", "-9223372036854775809"]


@pytest.mark.parametrize(("text", "value"), INTS_OK)
def test_parse_int_ok(text: str, value: int) -> None:
    assert parse_int(text) == value
    assert values(["-p", text]) == {"port": value}


@pytest.mark.parametrize("text", INTS_BAD)
def test_parse_int_syntax_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_int(text)
    assert error([f"-p={text}"]) == f'invalid value "{text}" for flag -p: parse error'


@pytest.mark.parametrize("text", INTS_RANGE)
def test_parse_int_out_of_range(text: str) -> None:
    with pytest.raises(OverflowError):
        parse_int(text)
    assert error(["-p", text]) == f'invalid value "{text}" for flag -p: value out of range'


def test_parse_bool() -> None:
    assert parse_bool("t") is True and parse_bool("F") is False
    with pytest.raises(ValueError):
        parse_bool("on")
