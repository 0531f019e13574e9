"""The configuration file parser (pynats_server.conf), against nats-server's conf package.

The first tables mirror nats-server's conf/lex_test.go and conf/parse_test.go; GO_AGREES at
the end was produced by running `nats-server -t` (2.14.0) on each snippet: the Go binary is not
needed to run these tests.
"""

from __future__ import annotations

import string
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynats_server.conf import ConfError, digest, parse, parse_file, parse_file_tokens, parse_tokens

NOENV: dict[str, str] = {}


def p(text: str, **env: str) -> dict:
    return parse(text, env=env)


def err(text: str, **env: str) -> str:
    with pytest.raises(ConfError) as e:
        parse(text, env=env)
    return str(e.value)


# -- values (lex_test.go / parse_test.go) ------------------------------------------------------

VALUES = [
    # TestSimpleTopLevel, TestBools
    ("foo='1'; bar=2.2; baz=true; boo=22", {"foo": "1", "bar": 2.2, "baz": True, "boo": 22}),
    ("foo=TRUE", {"foo": True}),
    ("foo=yes", {"foo": True}),
    ("foo=on", {"foo": True}),
    ("foo=Off", {"foo": False}),
    ("foo=NO", {"foo": False}),
    # TestPlainValue and friends: separators
    ('foo = "bar"', {"foo": "bar"}),
    ("foo = 'bar'", {"foo": "bar"}),
    ("foo='bar'\r\n", {"foo": "bar"}),
    ("foo=\t'bar'\t", {"foo": "bar"}),
    ("foo : 123", {"foo": 123}),
    ("foo:123", {"foo": 123}),
    ("foo:  123\r\n", {"foo": 123}),
    ("foo 123", {"foo": 123}),
    ("foo\t\t123\r\n", {"foo": 123}),
    ("foo\n\n123", {"foo": 123}),  # whitespace separators include newlines
    ("'foo' : 123", {"foo": 123}),
    ('" foo" : 123', {" foo": 123}),
    # TestComplexStringValues: single quotes are raw
    ("foo = 'bar\\r\\n  \\t'", {"foo": "bar\\r\\n  \\t"}),
    # TestStringStartingWithNumber
    ("foo = 3xyz", {"foo": "3xyz"}),
    ("foo = 3xyz,", {"foo": "3xyz"}),
    ("foo = 3xyz;", {"foo": "3xyz"}),
    ("\n        map {\n          foo = 3xyz}\n        ", {"map": {"foo": "3xyz"}}),
    ("map {\n foo = 3xyz,\n bar = 4wqs\n}", {"map": {"foo": "3xyz", "bar": "4wqs"}}),
    # TestBinaryString, TestCompoundString*
    ("foo = \\x65", {"foo": "e"}),
    ("foo = \\xe9", {"foo": "\udce9"}),  # a lone byte that is not UTF-8
    ("foo = \\xc3\\xa9", {"foo": "é"}),
    ('foo = "\\\\end"', {"foo": "\\end"}),
    ('foo = "start\\\\"', {"foo": "start\\"}),
    ("foo = \\x45\\x71", {"foo": "Eq"}),
    ("foo = start\\x45\\x71", {"foo": "startEq"}),
    ("foo = start\\x7Cend", {"foo": "start|end"}),
    ("foo = \\x3c\\x3eend", {"foo": "<>end"}),
    ("foo = \\x3cmiddle\\x3E", {"foo": "<middle>"}),
    (
        'foo  = \\t\nbar  = \\r\nbaz  = \\n\nq    = \\"\nbs   = \\\\\n',
        {"foo": "\t", "bar": "\r", "baz": "\n", "q": '"', "bs": "\\"},
    ),  # fmt: skip
    ("foo = \\\\true", {"foo": "\\true"}),  # TestNonBool
    ("foo = \\\\$var", {"foo": "\\$var"}),  # TestNonVariable
    ('foo = ""', {"foo": ""}),
    ("foo = ''", {"foo": ""}),
    ("foo =", {"foo": ""}),
    # Integers and sizes (TestConvenientIntegerValues, TestConvenientNumbers)
    ("foo = -123", {"foo": -123}),
    ("foo = 1k", {"foo": 1000}),
    ("foo = 1K", {"foo": 1000}),
    ("foo = 1m", {"foo": 1000**2}),
    ("foo = 1g", {"foo": 1000**3}),
    ("foo = 1t", {"foo": 1000**4}),
    ("foo = 1p", {"foo": 1000**5}),
    ("foo = 1e", {"foo": 1000**6}),
    ("foo = 1MB", {"foo": 1 << 20}),
    ("foo = 1Gb", {"foo": 1 << 30}),
    ("foo = 2MB", {"foo": 2097152}),
    ("foo = 3ki", {"foo": 3 * 1024}),
    ("foo = 64MiB", {"foo": 64 << 20}),
    ("foo = 22TB", {"foo": 22 << 40}),
    ("foo = 22PiB", {"foo": 22 << 50}),
    ("foo = 1EB", {"foo": 1 << 60}),
    ("foo = -1m", {"foo": -(1000**2)}),
    ("foo = -1GB ", {"foo": -(1 << 30)}),
    ("foo = 1Ghz", {"foo": "1Ghz"}),
    ("foo = 2Pie", {"foo": "2Pie"}),
    ("foo = 3Mbs,", {"foo": "3Mbs"}),
    ("foo = 4Gb, bar = 5Gø", {"foo": 4 << 30, "bar": "5Gø"}),
    # Floats, IP addresses, dates
    ("foo = 22.2", {"foo": 22.2}),
    ("foo = -1.5", {"foo": -1.5}),
    ("listen: 127.0.0.1:4222", {"listen": "127.0.0.1:4222"}),
    ("listen: 127.0.0.1", {"listen": "127.0.0.1"}),
    ("listen: apcera.me:80", {"listen": "apcera.me:80"}),
    ("listen: nats.io:-1", {"listen": "nats.io:-1"}),
    ("listen: -1", {"listen": -1}),
    ("listen: :-1", {"listen": ":-1"}),
    ("listen = :80", {"listen": ":80"}),
    ("listen = [localhost:4222, localhost:4333]", {"listen": ["localhost:4222", "localhost:4333"]}),
    ("foo = 2016-05-04T18:53:41Z", {"foo": datetime(2016, 5, 4, 18, 53, 41, tzinfo=timezone.utc)}),
    # Raw strings end at a quote (TestRawString)
    ("foo = bar' ", {"foo": "bar"}),
    # Arrays and maps
    ("foo = [1, 2, 3, 'bar']", {"foo": [1, 2, 3, "bar"]}),
    ("foo = [1,2,3,'bar']", {"foo": [1, 2, 3, "bar"]}),
    ("foo = [1 ]", {"foo": [1]}),
    ("foo = [1k]", {"foo": ["1k"]}),  # a size right before ']' stays a string, as in Go
    (
        "\n# top level comment\nfoo = [\n 1, # One\n 2, // Two\n 3 # Three\n 'bar'     ,\n \"bar\"\n]\n",
        {"foo": [1, 2, 3, "bar", "bar"]},
    ),  # fmt: skip
    ("foo = [\n 1 // foo\n 2\n 3\n 'bar'\n \"bar\"\n]", {"foo": [1, 2, 3, "bar", "bar"]}),
    ("foo = {ip='127.0.0.1', port = 4242}", {"foo": {"ip": "127.0.0.1", "port": 4242}}),
    (
        "foo = {\n  ip = '127.0.0.1' # the IP\n  port= 4242 // the port\n}",
        {"foo": {"ip": "127.0.0.1", "port": 4242}},
    ),  # fmt: skip
    (
        "foo  {\n  host  {\n    ip = '127.0.0.1'\n    port= 4242\n  }\n}",
        {"foo": {"host": {"ip": "127.0.0.1", "port": 4242}}},
    ),  # fmt: skip
    ("foo = {'bar' = 4242}", {"foo": {"bar": 4242}}),
    ('foo = {"bar-1.2.3" = { port:4242 }}', {"foo": {"bar-1.2.3": {"port": 4242}}}),
    (
        'systems {\n  allinone {\n    description: "This is a description."\n  }\n}',
        {"systems": {"allinone": {"description": "This is a description."}}},
    ),  # fmt: skip
    (
        "authorization {\n    users = [\n      {user: alice, password: foo}\n      {user: bob,   password: bar}\n    ]\n    timeout: 0.5\n}",
        {
            "authorization": {
                "users": [{"user": "alice", "password": "foo"}, {"user": "bob", "password": "bar"}],
                "timeout": 0.5,
            }
        },
    ),  # fmt: skip
    (
        '  array [\n    { abc: 123 }\n    { xyz: "word" }\n  ]',
        {"array": [{"abc": 123}, {"xyz": "word"}]},
    ),
    # TestOptionalSemicolons, TestNonQuotedStrings
    (
        "foo = 123;\nbar = 'baz';\nbaz = 'boo'\nmap {\n id = 1;\n}\n",
        {"foo": 123, "bar": "baz", "baz": "boo", "map": {"id": 1}},
    ),  # fmt: skip
    (
        "foo = 123\nbar = baz\nbaz=boo\nmap {\n id:one\n id2 : onetwo\n}\nt true\nf false\n"
        'tstr "true"\ntkey = two\nfkey = five # This should be a string\n',
        {
            "foo": 123,
            "bar": "baz",
            "baz": "boo",
            "map": {"id": "one", "id2": "onetwo"},
            "t": True,
            "f": False,
            "tstr": "true",
            "tkey": "two",
            "fkey": "five",
        },
    ),  # fmt: skip
    # Sample3: multi-line single-quoted strings
    (
        "foo  {\n  expr = '(true == \"false\")'\n  text = 'This is a multi-line\ntext block.'\n}",
        {"foo": {"expr": '(true == "false")', "text": "This is a multi-line\ntext block."}},
    ),  # fmt: skip
    # Block strings
    ("numbers (\n1234567890\n)\n", {"numbers": "\n1234567890\n"}),
    (
        "numbers (\n  12(34)56\n  (\n    7890\n  )\n)\n",
        {"numbers": "\n  12(34)56\n  (\n    7890\n  )\n"},
    ),
    ("numbers (\nabc\n)", {"numbers": "\nabc\n)"}),  # at the very end Go keeps the ')'
    # JSON-like files (TestJSONParseCompat, TestBlocks)
    ("{}", {}),
    ("{ listen: 127.0.0.1:4222 }", {"listen": "127.0.0.1:4222"}),
    (
        "\n{\n\t{\n\t\tlisten: 127.0.0.1:4222 // random comment\n\t}\n\t# wibble1\n}\n# wibble2\n",
        {"listen": "127.0.0.1:4222"},
    ),  # fmt: skip
    (
        '{\n  "debug":              False\n  "prof_port":          8221\n  "server_name": "aws-useast2-natscj1-1"\n}\n',
        {"debug": False, "prof_port": 8221, "server_name": "aws-useast2-natscj1-1"},
    ),  # fmt: skip
    (
        '{"http_port": 8227,"port": 4227,"write_deadline": "1h","cluster": {"port": 6222,"routes": ["nats://127.0.0.1:4222"]}}',
        {
            "http_port": 8227,
            "port": 4227,
            "write_deadline": "1h",
            "cluster": {"port": 6222, "routes": ["nats://127.0.0.1:4222"]},
        },
    ),  # fmt: skip
    (
        '{\n  "jetstream": {\n    "store_dir": "/tmp/nats"\n    "max_mem": 1000000,\n  },\n  "port": 4222\n}\n',
        {"jetstream": {"store_dir": "/tmp/nats", "max_mem": 1000000}, "port": 4222},
    ),  # fmt: skip
    (
        "\n  accounts { users = [{}]}\n  }\n",
        {"accounts": {"users": [{}]}},
    ),  # a stray '}' at the end
    # Empty configurations are valid
    ("", {}),
    ("\n\n\n   ", {}),
    ("\n  # just comments with no values\n  # is still valid.\n", {}),
]


@pytest.mark.parametrize("text,expected", VALUES)
def test_values(text: str, expected: dict) -> None:
    assert parse(text, env=NOENV) == expected


ERRORS = [
    (
        "foo = xyz\\x\n",
        "Parse error on line 2: 'Expected two hexadecimal digits after '\\x', but hit end of line'",
    ),
    (
        "foo = xyz\\xF\n",
        "Parse error on line 2: 'Expected two hexadecimal digits after '\\x', but hit end of line'",
    ),
    (
        'foo = "[\\x]"',
        "Parse error on line 1: 'Expected two hexadecimal digits after '\\x', but got ']\"''",
    ),
    (
        'foo = "[\\xe]"',
        "Parse error on line 1: 'Expected two hexadecimal digits after '\\x', but got 'e]''",
    ),
    ("foo = .2", "Parse error on line 1: 'Floats must start with a digit'"),
    (" :foo = 22", "Parse error on line 1: 'Unexpected key separator ':''"),
    (
        "foo = \\y",
        "Parse error on line 1: 'Invalid escape character 'y'. Only the following escape "
        "characters are allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\.'",
    ),  # fmt: skip
    (
        '\nlisten: "localhost:4242\n\nhttp: localhost:8222\n',
        "Parse error on line 5: 'Unexpected EOF.'",
    ),
    (
        "\nlisten: 'localhost:4242\n\nhttp: localhost:8222\n",
        "Parse error on line 5: 'Unexpected EOF.'",
    ),
    (
        '\nfoo = "\nlisten: "\n\nhttp: localhost:8222\n\n"\n',
        "Parse error on line 8: 'Unexpected EOF.'",
    ),
    (
        "\nlisten = 4222\n\ncluster = {\n\n  foo = bar\n\n",
        "Parse error on line 8: 'Unexpected EOF processing map.'",
    ),
    (
        "\nlisten = 4222\n\nquote = (\n\n  foo = bar\n\n",
        "Parse error on line 8: 'Unexpected EOF processing block.'",
    ),
    (
        "A@@Føøøø?˛ø:{øøøø˙˙",
        "Parse error on line 1: 'Unexpected EOF processing map key.'",
    ),  # TestParserNoInfiniteLoop
    ('include "9/\ufffd', "Parse error on line 1: 'Unexpected EOF in double quoted include'"),
    # TestParseWithNoValuesAreInvalid
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "config is invalid (:1:41)"),
    ("              aaaaaaaaaaaaaaaaaaaaaaaaaaa", "config is invalid (:1:41)"),
    ("     aaaaaaaaaaaaaaaaaaaaaaaaaaa         ", "config is invalid (:1:41)"),
    (
        "\n          \t\t# with comments and no spaces to create key values\n         \t\t# is also an "
        "invalid config.\n         \t\taaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n                        ",
        "config is invalid (:5:25)",
    ),  # fmt: skip
    (
        "\n                        a,a,a,a,a,a,a,a,a,a,a\n                        ",
        "config is invalid (:3:25)",
    ),
    # Variables
    ("foo=$index", "variable reference for 'index' on line 1 can not be found"),
    (
        "listen: 127.0.0.1:$PORT",
        "Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got '$' instead.'",
    ),  # fmt: skip
    # Differences from nats-server, which misbehaves on these without an error
    ("foo = 1kbb", "expected integer, but got '1kbb'"),
    ("foo = 10e", "integer '10e' is out of the range"),
    ("foo { bar = }", "Parse error on line 1: 'Expected a value for key 'bar' but got '}'.'"),
]


@pytest.mark.parametrize("text,message", ERRORS)
def test_errors(text: str, message: str) -> None:
    assert err(text) == message


# -- variables ----------------------------------------------------------------------------------


def test_variables_are_block_scoped() -> None:
    text = "index = 22\nnest {\n  index = 11\n  foo = $index\n}\nbar = $index\n"
    assert p(text) == {"index": 22, "nest": {"index": 11, "foo": 11}, "bar": 22}


def test_variables_see_enclosing_maps_not_arrays() -> None:
    text = "a = 1\nm { list = [ { b = $a } ] }\n"
    assert p(text) == {"a": 1, "m": {"list": [{"b": 1}]}}


def test_variable_must_be_defined_before_use() -> None:
    assert err("a = $b\nb = 1") == "variable reference for 'b' on line 1 can not be found"


def test_variables_hold_any_value() -> None:
    text = "USERS = [ {user: a} ]\nauth { users = $USERS }\nM = { x = 1 }\nm = $M"
    assert p(text)["auth"] == {"users": [{"user": "a"}]}
    assert p(text)["m"] == {"x": 1}


def test_environment_values_are_parsed_as_values() -> None:
    assert p("foo = $__UNIQ22__", __UNIQ22__="22") == {"foo": 22}
    assert p("foo = $__UNIQ22__", __UNIQ22__="xyz") == {"foo": "xyz"}
    assert p("foo = $__UNIQ22__", __UNIQ22__="3Gyz") == {"foo": "3Gyz"}
    assert p("foo = $__UNIQ22__", __UNIQ22__="'3xyz'") == {"foo": "3xyz"}
    assert p("foo = $X", X="[1, 2 ]") == {"foo": [1, 2]}
    assert p("foo = $X", X="") == {"foo": ""}


def test_config_keys_win_over_the_environment() -> None:
    assert p("X = 1\nfoo = $X", X="2") == {"X": 1, "foo": 1}


def test_environment_reference_cycles_are_detected() -> None:
    assert err("port: $A", A="$B", B="$A") == (
        "variable reference for 'A' on line 1 could not be parsed: variable reference for 'B' on "
        "line 1 could not be parsed: variable reference for 'A' on line 1 could not be parsed: "
        "variable reference cycle for 'A'"
    )
    assert "variable reference cycle for 'A'" in err("port: $A", A="$A")


def test_environment_value_that_does_not_parse() -> None:
    assert err("server_name: $A", A="a b") == (
        "variable reference for 'A' on line 1 could not be parsed: Parse error on line 1: "
        "'Expected a top-level value to end with a new line, comment or EOF, but got 'b' instead.'"
    )


def test_bcrypt_hashes_are_not_variables() -> None:
    assert p("password: $2a$11$ooo") == {"password": "$2a$11$ooo"}
    assert p("password: [$2a$11$ooo]") == {"password": ["$2a$11$ooo"]}
    assert "can not be found" in err("password: $2b$11$ooo")  # only $2a$, as in nats-server


def test_dollar_inside_a_value_is_literal() -> None:
    assert p("a = foo$bar\nb = 'x$y'\nc = \"$z\"") == {"a": "foo$bar", "b": "x$y", "c": "$z"}


def test_used_variables_are_marked() -> None:
    tokens = parse_tokens("A = 1\nB = 2\nport = $B\n", env=NOENV)
    assert (tokens["A"].used, tokens["B"].used, tokens["port"].used) == (False, True, False)


def test_environment_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNATS_CONF_TEST", "4222")
    assert parse("port: $PYNATS_CONF_TEST") == {"port": 4222}


# -- positions ----------------------------------------------------------------------------------


def test_token_positions_are_nats_servers() -> None:
    # Columns are 0-based on the first line and 1-based after it, as nats-server reports them.
    tokens = parse_tokens("  foo = 1\n  bar = { baz: 2 }\n'q' = [ 3 ]\n", path="x.conf", env=NOENV)
    assert tokens["foo"].source == "x.conf:1:2"
    assert tokens["bar"].source == "x.conf:2:3"
    assert tokens["bar"].value["baz"].source == "x.conf:2:11"
    assert tokens["q"].source == "x.conf:3:2"


# -- includes -----------------------------------------------------------------------------------


@pytest.fixture
def go_includes(tmp_path: Path) -> Path:
    """nats-server's conf/simple.conf and conf/includes/."""
    (tmp_path / "includes").mkdir()
    (tmp_path / "simple.conf").write_text(
        "listen: 127.0.0.1:4222\n\nauthorization {\n  include 'includes/users.conf' # Pull in from file\n"
        "  timeout: 0.5\n}\n"
    )
    (tmp_path / "includes" / "users.conf").write_text(
        "# Users configuration\n\ninclude ./passwords.conf;\n\nusers = [\n"
        "  {user: alice, password: $ALICE_PASS}\n  {user: bob,   password: $BOB_PASS}\n]\n"
    )
    (tmp_path / "includes" / "passwords.conf").write_text(
        "# Just foo & bar for testing\n"
        "ALICE_PASS: $2a$10$UHR6GhotWhpLsKtVP0/i6.Nh9.fuY73cWjLoJjb2sKT8KISBcUW5q\n"
        "BOB_PASS: $2a$11$dZM98SpGeI7dCFFGSpt.JObQcix8YHml4TBUZoge9R1uxnMIln5ly\n"
    )
    return tmp_path


ALICE = "$2a$10$UHR6GhotWhpLsKtVP0/i6.Nh9.fuY73cWjLoJjb2sKT8KISBcUW5q"
BOB = "$2a$11$dZM98SpGeI7dCFFGSpt.JObQcix8YHml4TBUZoge9R1uxnMIln5ly"


def test_includes(go_includes: Path) -> None:
    assert parse_file(str(go_includes / "simple.conf"), env=NOENV) == {
        "listen": "127.0.0.1:4222",
        "authorization": {
            "ALICE_PASS": ALICE,
            "BOB_PASS": BOB,
            "users": [{"user": "alice", "password": ALICE}, {"user": "bob", "password": BOB}],
            "timeout": 0.5,
        },
    }


def test_included_keys_are_variables_for_the_includer(go_includes: Path) -> None:
    text = (
        'authorization {\n\n  include "./includes/passwords.conf"\n\n  CAROL_PASS: foo\n\n'
        "  users = [\n   {user: alice, password: $ALICE_PASS}\n   {user: carol, password: $CAROL_PASS}\n  ]\n}\n"
    )
    tokens = parse_tokens(text, path=str(go_includes / "main.conf"), env=NOENV)
    auth = tokens["authorization"].value
    assert (auth["ALICE_PASS"].line, auth["ALICE_PASS"].col, auth["ALICE_PASS"].value) == (
        2,
        1,
        ALICE,
    )
    assert auth["ALICE_PASS"].file.endswith("includes/passwords.conf")
    assert (auth["BOB_PASS"].line, auth["BOB_PASS"].col) == (3, 1)
    assert (auth["CAROL_PASS"].line, auth["CAROL_PASS"].col) == (5, 3)
    assert auth["ALICE_PASS"].used and not auth["BOB_PASS"].used


def test_included_file_cannot_see_the_includers_variables(tmp_path: Path) -> None:
    (tmp_path / "inc.conf").write_text("server_name = $NAME\n")
    main = tmp_path / "main.conf"
    main.write_text("NAME = foo\ninclude inc.conf\n")
    with pytest.raises(ConfError) as e:
        parse_file(str(main), env=NOENV)
    assert str(e.value) == (
        "error parsing include file 'inc.conf', variable reference for 'NAME' on line 1 can not be found"
    )
    assert parse_file(str(main), env={"NAME": "bar"})["server_name"] == "bar"


def test_include_paths_are_relative_to_the_including_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.conf").write_text("include ../b.conf\nx = 1\n")
    (tmp_path / "b.conf").write_text("y = 2\n")
    (tmp_path / "main.conf").write_text("m { include 'sub/a.conf' }\n")
    assert parse_file(str(tmp_path / "main.conf"), env=NOENV) == {"m": {"y": 2, "x": 1}}
    # Even an absolute-looking path: nats-server joins it to the including file's directory.
    (tmp_path / "abs.conf").write_text("include /b.conf\n")
    assert parse_file(str(tmp_path / "abs.conf"), env=NOENV) == {"y": 2}


def test_include_errors_name_the_included_file(tmp_path: Path) -> None:
    (tmp_path / "quux.conf").write_text("?????????????")
    (tmp_path / "main.conf").write_text("accounts {\n  quux { include 'quux.conf'}\n}\n")
    with pytest.raises(ConfError) as e:
        parse_file(str(tmp_path / "main.conf"), env=NOENV)
    assert str(e.value) == (
        f"error parsing include file 'quux.conf', config is invalid ({tmp_path}/quux.conf:1:13)"
    )


def test_include_cycles_are_errors(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("include b.conf\n")
    (tmp_path / "b.conf").write_text("include 'a.conf'\n")
    with pytest.raises(ConfError, match="include cycle"):
        parse_file(str(tmp_path / "a.conf"), env=NOENV)


def test_missing_file() -> None:
    with pytest.raises(ConfError, match=r"^open /nonexistent/x\.conf: no such file or directory$"):
        parse_file("/nonexistent/x.conf")


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    assert "nested too deeply" in err("a = " + "[" * 5000)


# -- digest (TestParseDigest) -------------------------------------------------------------------

DIGESTS = [
    ("foo = bar", "sha256:226e49e13d16e5e8aa0d62e58cd63361bf097d3e2b2444aa3044334628a2e8de"),
    (
        "# Comments and whitespace have no effect\n  foo = bar\n",
        "sha256:226e49e13d16e5e8aa0d62e58cd63361bf097d3e2b2444aa3044334628a2e8de",
    ),  # fmt: skip
    ("{ 'foo': 'bar' }", "sha256:226e49e13d16e5e8aa0d62e58cd63361bf097d3e2b2444aa3044334628a2e8de"),
    (
        "BAR_USERS = { users = [ {user = \"bar\"} ]}\nhello = 'world'\naccounts {\n"
        "  QUUX_USERS = [ { user: quux }]\n  bar = $BAR_USERS\n  quux = { users = $QUUX_USERS }\n}\n"
        "very { nested { env { VAR = 'NESTED', quux = $VAR }}}\n",
        "sha256:bddb282343249c26d3edcef9bfaa9d2711505fc67210380e871405ba394a9186",
    ),  # fmt: skip
    (
        "hello = 'world'\naccounts {\n  bar  = { users = [ { user = \"bar\" } ]}\n"
        "  quux = { users = [ { user: quux   } ]}\n}\nvery { nested { env { quux = 'NESTED' }}}\n",
        "sha256:34f8faf3f269fe7509edc4742f20c8c4a7ad51fe21f8b361764314b533ac3ab5",
    ),  # fmt: skip
    (
        'BAR_USERS = { users = [ {user = "foo"} ]}\nbar = $BAR_USERS\naccounts {\n  users = $BAR_USERS\n}\n',
        "sha256:b0e2ba0b8ec2cb75681b5c5d61789cda0c9942c2f9fe16cdb7f6703364485360",
    ),  # fmt: skip
    (
        'bar = { users = [ {user = "foo"} ]}\naccounts {\n  users = { users = [ {user = "foo"} ]}\n}\n',
        "sha256:f5d943b4ed22b80c6199203f8a7eaa8eb68ef7b2d46ef6b1b26f05e21f8beb13",
    ),  # fmt: skip
]


@pytest.mark.parametrize("text,expected", DIGESTS)
def test_digest(text: str, expected: str) -> None:
    assert digest(parse_tokens(text, env=NOENV)) == expected
    assert digest(parse(text, env=NOENV)) == expected


def test_digest_with_includes(tmp_path: Path) -> None:
    (tmp_path / "foo.conf").write_text(' users = [{user = "foo"}]')
    (tmp_path / "quux.conf").write_text(' users = [{user = "quux"}]')
    (tmp_path / "main.conf").write_text(
        "accounts {\n  foo { include 'foo.conf'}\n  bar { users = [{user = \"bar\"}] }\n"
        "  quux { include 'quux.conf'}\n}\n"
    )
    tokens = parse_file_tokens(str(tmp_path / "main.conf"), env=NOENV)
    assert (
        digest(tokens) == "sha256:e72d70c91b64b0f880f86decb95ec2600cbdcf8bdcd2355fce5ebc54a84a77e9"
    )


# -- properties ---------------------------------------------------------------------------------

_KEYS = st.text(string.ascii_letters + "_", min_size=1, max_size=12).filter(
    lambda k: k.lower() not in ("include", "true", "false", "yes", "no", "on", "off")
)
_STRINGS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)
_SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.booleans(), _STRINGS,
    st.builds(lambda i, f: float(f"{i}.{f}"), st.integers(-(10**9), 10**9), st.integers(0, 999)),
)  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=12,
)


def _render(value: object, sep: str, end: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return '"' + escaped.replace("\r", "\\r").replace("\t", "\\t") + '"'
    if isinstance(value, list):
        # " ]": nats-server reads `[1]` as the string "1]"
        return "[" + ", ".join(_render(v, sep, end) for v in value) + " ]"
    assert isinstance(value, dict)
    body = end.join(f"{k}{sep}{_render(v, sep, end)}" for k, v in value.items())
    return "{" + body + "}"


@settings(max_examples=300)
@given(
    st.dictionaries(_KEYS, _VALUES, max_size=6),
    st.sampled_from([" = ", ": ", " ", "=", ":"]),
    st.sampled_from(["\n", "; ", ", ", "\n\n  "]),
)
def test_round_trip(config: dict, sep: str, end: str) -> None:
    text = end.join(f"{k}{sep}{_render(v, sep, end)}" for k, v in config.items())
    assert parse(text, env=NOENV) == config


@settings(max_examples=500)
@given(st.text(alphabet=" \t\n\r{}[]()=:;,#/'\"\\$-.0123456789abkKMxyzZT", max_size=40))
def test_any_input_parses_or_raises_conf_error(text: str) -> None:
    try:
        parse(text, env={"a": "1", "b": "$b"})
    except ConfError:
        pass


# -- agreement with nats-server -t (2.14.0) -----------------------------------------------------


@pytest.fixture
def in_conf_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The files the include cases below refer to, in the current directory."""
    (tmp_path / "sub").mkdir()
    files = {
        "users.conf": 'users = [ {user: alice, password: "s3cret"}, {user: "bob", password: "bobpw"} ]\nPW = abc\n',
        "envinc.conf": "server_name = $NAME\n",
        "bad_inc.conf": "port = 4222\nportx = $port\n",
        "sub/inc.conf": "include ../users2.conf\n",
        "users2.conf": "http_port = 8222\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# fmt: off
GO_AGREES = [
    ('port: 4222', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('port: 4222\nping_interval: 30', {}, 'parses'),
    ('cluster { routes: [1] }', {}, 'error: Parse error on line 1: \'Expected an array value terminator "," or an array terminator "]", but got \'}\' instead.\''),
    ('cluster { routes: [1 ] }', {}, 'parses'),
    ('cluster { routes: [1k] }', {}, 'sha256:59ab1ac60833c11a24f5cf7f86ee755230482b9649e423deb13537b037f7bee8'),
    ('port\n4222', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('port =\n4222', {}, "error: Parse error on line 2: 'Expected value but found new line'"),
    ('port = 4222 }', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('}', {}, 'parses'),
    ('port = 4222\n}\n', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('port = 4222\n"', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('port = "', {}, 'error: config is invalid (x.conf:1:8)'),
    ('server_name =', {}, 'sha256:2522a4a15b760e48fb9eb2fe96390ec5d4d7b66673d7fc8fede40f993c470da2'),
    ('include /users.conf', {}, 'parses'),
    ('port = 1.5s', {}, "error: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got 's' instead.'"),
    ('port: 10-1', {}, "error: Parse error on line 1: 'All ISO8601 dates must be in full Zulu form.'"),
    ('port: -abc', {}, "error: Parse error on line 1: 'Expected a digit but got 'a'.'"),
    ('http: 127.0.0.1:$P', {}, "error: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got '$' instead.'"),
    ('server_name: foo$bar', {}, 'sha256:df61a367d9ea01598fb56ad12ab9aa0db13a5b03fb291c758d3e387b5e70d6e7'),
    ('server_name: $2b$10$abc', {}, "error: variable reference for '2b$10$abc' on line 1 can not be found"),
    ('server_name: $2a$10$abc', {}, 'sha256:1d9d53a0b6338432cbd970d0f29e3dcc25e50a45f37e0ed4d99e870a78c6206d'),
    ('port = $A', {}, "error: variable reference for 'A' on line 1 can not be found"),
    ('X = 2016-05-04T18:53:41Z\nport = $X', {}, 'parses'),
    ('X = 2016-13-04T18:53:41Z', {}, "error: expected Zulu formatted DateTime, but got '2016-13-04T18:53:41Z'"),
    ('X = 2016-05-04T18:53:41', {}, "error: Parse error on line 1: 'Expected 'Z' in ISO8601 datetime, but found '' instead.'"),
    ('port = [1 ]', {}, 'parses'),
    ('port: 99999999999999999999', {}, "error: integer '99999999999999999999' is out of the range"),
    ('server_name = "a\\qb"', {}, 'error: Parse error on line 1: \'Invalid escape character \'q\'. Only the following escape characters are allowed: \\xXX, \\t, \\n, \\r, \\", \\\\.\''),
    ('server_name = \\x4', {}, "error: Parse error on line 1: 'Expected two hexadecimal digits after '\\x', but got 'x4''"),
    ('server_name = \\x41\\x42', {}, 'sha256:a5e6d5f5325252cb32c9322f50fb59bdf0846cea99290515b316b0b568e8b457'),
    ('server_name = "\\xc3\\xa9t\\xe9"', {}, 'sha256:89d12cd668ce2a9a47261bb590b7c4e0429e699fec9ec238cec2d505fc3678d7'),
    ('port = 1.', {}, "error: Parse error on line 1: 'Floats must have a digit after the '.', but got '' instead.'"),
    ('server_name = (\nabc\n)', {}, 'sha256:7fad305ed33096c9a645007e811332955ee9ea96f860d4be3c4fa4751c187861'),
    ('server_name = (\nabc\n)\nport = 4', {}, 'sha256:79c8528522503f9296d1984b2f7a6e36f38e8d8aca1416dbe144fc22ae0039ad'),
    ('server_name = (\nab)c\n )\n)\nport = 4', {}, 'parses'),
    ('port = 4222;;', {}, 'error: config is invalid (x.conf:1:13)'),
    ('port = 4222,,', {}, 'error: config is invalid (x.conf:1:13)'),
    ('port = 4222 / 1', {}, "error: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got '1' instead.'"),
    ('{ port = 4222\n}', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('{port = 4222}}', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('{ { port = 4222 } }', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('{ port = 4222', {}, "error: Parse error on line 1: 'Expected a block-level value to end with a new line, comment or EOF, but got '' instead.'"),
    ('{ port = 4222 } ; { http_port = 8222 }', {}, 'parses'),
    ('{ { port = 4222 }\n  # c\n  http_port = 8222 }', {}, 'sha256:e1de37c563dc2a33a5197af8e1150847495a17cf64705d1e2f10e5449aa8e601'),
    ('port: 4222; http: 8222', {}, 'sha256:f625dd9370e71b29f3fd9c2a142b41a5c8eb04421269a0d969b256ba1ff2a09e'),
    ('a { b = 1 } c = 2', {}, "error: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got 'c' instead.'"),
    ('include', {}, 'error: config is invalid (x.conf:1:7)'),
    ('A = 1\nB = $A', {}, 'parses'),
    ('A = 1\nport = $A', {}, 'sha256:220a9265723a9e9c3296e8a3aec76af866fac451653cf14fd01995ec79620251'),
    ('port: $A', {'A': '$B', 'B': '$A'}, "error: variable reference for 'A' on line 1 could not be parsed: variable reference for 'B' on line 1 could not be parsed: variable reference for 'A' on line 1 could not be parsed: variable reference cycle for 'A'"),
    ('server_name: $A', {'A': 'a b'}, "error: variable reference for 'A' on line 1 could not be parsed: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got 'b' instead.'"),
    ('server_name: $A', {'A': '"a b"'}, 'parses'),
    ('port: $A', {'A': '1k'}, 'sha256:b4e37e69fac012708240ea673bed4137a1af43762a352f4e1a9f26a0574ce8a7'),
    ('server_name: $A', {'A': ''}, 'sha256:2522a4a15b760e48fb9eb2fe96390ec5d4d7b66673d7fc8fede40f993c470da2'),
    ('server_name: $SN', {'SN': 'srv1'}, 'sha256:c17cb3807cafd0687b4e080d55fecf90511a5deb142f8996b9895f685433072a'),
    ("server_name: 'abc", {}, "error: Parse error on line 1: 'Unexpected EOF.'"),
    ('server_name: "abc', {}, "error: Parse error on line 1: 'Unexpected EOF.'"),
    ("server_name: 'abc'", {}, 'sha256:0b1fe415b87ddc3540b382c42f940542884ebeba3022892fc8dc9951392641d3'),
    ("'port' = 4222", {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('"port": 4222, "http_port": 8222', {}, 'sha256:e1de37c563dc2a33a5197af8e1150847495a17cf64705d1e2f10e5449aa8e601'),
    ('port 4222 # comment\nhttp_port = 8222 // comment', {}, 'sha256:e1de37c563dc2a33a5197af8e1150847495a17cf64705d1e2f10e5449aa8e601'),
    ('# comment only\n// another', {}, 'parses'),
    ('', {}, 'parses'),
    ('port = 4222 /', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('/ port = 4222', {}, "error: Parse error on line 1: 'Unexpected EOF.'"),
    ('cluster {\n  name: "C1"\n  listen: "127.0.0.1:6222"\n  routes = [\n    nats-route://a:b@127.0.0.1:6223  # c1\n    nats-route://a:b@127.0.0.1:6224, // c2\n  ]\n}', {}, 'sha256:8556d36fda6d2e9b1deee211da7492e56e22c58a1145968fc7fdccd8efb63da0'),
    ('cluster { name = C1, routes = [ ] , }', {}, 'sha256:109408197ce7673bcbd51474a1310a5fdbafce2ba87e9073eef9f5f8bc6be0fe'),
    ('cluster { name = C1 ; port = 6222 }', {}, 'sha256:0a3bffe4874ed5d205a1030937a0419cf230a34a73549378818d179744cfefe3'),
    ('cluster { / name = C1 }', {}, 'parses'),
    ('cluster { name = C1 / port = 6222 }', {}, 'sha256:0a3bffe4874ed5d205a1030937a0419cf230a34a73549378818d179744cfefe3'),
    ('cluster { name = C1 port = 6222 }', {}, 'error: Parse error on line 1: \'Expected a map value terminator "," or a map terminator "}", but got \'p\' instead.\''),
    ('cluster {', {}, "error: Parse error on line 1: 'Unexpected EOF processing map.'"),
    ('cluster { name', {}, "error: Parse error on line 1: 'Unexpected EOF processing map key.'"),
    ('cluster { name = C1 ]', {}, 'error: Parse error on line 1: \'Expected a map value terminator "," or a map terminator "}", but got \']\' instead.\''),
    ('cluster { , name = C1 }', {}, 'error: Parse error on line 1: \'Expected a map value terminator "," or a map terminator "}", but got \'=\' instead.\''),
    ('cluster { = name }', {}, "error: Parse error on line 1: 'Unexpected key separator '='.'"),
    ('cluster { routes = [ , ] }', {}, "error: Parse error on line 1: 'Unexpected array value terminator ','.'"),
    ('cluster { routes = [ "a" / "b" ] }', {}, 'sha256:2c41c0bb7ff45111e75520226fd07ee0f6979d833153fc1746571d0b641b5f74'),
    ('cluster { routes = [ "a" "b" ] }', {}, 'error: Parse error on line 1: \'Expected an array value terminator "," or an array terminator "]", but got \'"\' instead.\''),
    ('cluster { routes = [ "a",\n"b" ] }', {}, 'sha256:2c41c0bb7ff45111e75520226fd07ee0f6979d833153fc1746571d0b641b5f74'),
    ('cluster { routes = [ "a" }', {}, 'error: Parse error on line 1: \'Expected an array value terminator "," or an array terminator "]", but got \'}\' instead.\''),
    ('authorization {\n  user: foo\n  password: $2a$11$abcdef\n  timeout: 1.5\n}', {}, 'sha256:afc16347f48f526b9abed3841f312af81e46b649a32466b2fb0ee4443e42740a'),
    ('authorization { user = a, password = b, timeout = 0.5 }', {}, 'sha256:b9c734032de6b78847116f48f1998692480367098cd762c9fd6e1f66fbc27473'),
    ('authorization { user = a\n  password =\n  b }', {}, 'sha256:1e615487e1e30dfa26852913cc9a9ba34c164b8ccbc4dacf5814622c5f3f59df'),
    ('max_payload: 2MB\nmax_pending: 64MiB\nmax_control_line: 4KB', {}, 'sha256:ee1fef6dd5da7c3ab3d4064e9ecb4338bee2a3bb7549f157b47b69df150619af'),
    ('max_payload: -1k', {}, 'sha256:148d20a3d04585d310171bbb1dc270536aa6b1083ea410d729557c3b5e52e59d'),
    ('max_payload: 1.2.3.4', {}, 'parses'),
    ('port: 4222:4', {}, 'parses'),
    ('listen: 127.0.0.1:4222', {}, 'sha256:bfa037b94ac399931a51e64559d5b8b099a1777b0832b8f5c14fee855e33b59c'),
    ('listen: localhost:4222', {}, 'sha256:b4b7bb1de1f64c18ab8d604abad683cb44f705090f4e3fe5580cc1f454060fec'),
    ('listen: [::1]:4222', {}, "error: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got ':' instead.'"),
    ('listen: "[::1]:4222"', {}, 'sha256:e5815a096f70748e883e6d6737633662522a91b74df766801de830deba1b3ae3'),
    ('server_name = nats.io:-1', {}, 'sha256:1c4f823529c9dfac3d28c82d3e4f530864893fafa2511913c988d20c79c2eae7'),
    ('server_name = a\\tb', {}, 'sha256:192ac1496705d0bc24e1eeb25571b79e1d41c3d3f78e8d02572fc75787a68f90'),
    ('server_name = yes', {}, 'parses'),
    ('debug = YES\ntrace = Off\nlogtime = true', {}, 'sha256:0589b0a4c3c290650e27b50c4dfec3386f9831e5134c8ee331cc8d939174a9bd'),
    ('debug = "true"', {}, 'parses'),
    ('port = 0x10', {}, 'parses'),
    ('port = 1_000', {}, 'parses'),
    ('port = 00012', {}, 'sha256:7d88f9705dcf6844abe6c34f175f745d7bee677657298b5792f96803f2528dfc'),
    ('port = -0', {}, 'sha256:b93e69a407407bfbc720e81a2809d8ae6c8e5e774e7115b90b7add9d9ebda893'),
    ('server_name = 12ab', {}, 'sha256:7ceafc29cd640e813a96370faa0fb9757bd24518495da7c3bbdc34c6305755e7'),
    ("server_name = 12ab'cd", {}, "error: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got 'c' instead.'"),
    ("server_name = 1'2", {}, 'sha256:862e540b9d41bbc37fbb50e64f0fe3ae705afe227f4e987d49d1a4f93e02b5b7'),
    ('server_name = 1\\t', {}, 'sha256:99d045df7aaa7d491212bb3c8488a1c29f1361b470b619bb91bed07c3178886e'),
    ('server_name = -', {}, "error: Parse error on line 1: 'Expected a digit but got ''.'"),
    ('server_name = .5', {}, "error: Parse error on line 1: 'Floats must start with a digit'"),
    ('port = 1e3', {}, "error: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got '3' instead.'"),
    ('port = 1e', {}, 'sha256:b61662e32cf3fa5c12d14e2486000a862550d96aa6b45e5a4176ca2f0fed2a09'),
    ('port = 1e2', {}, "error: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got '2' instead.'"),
    ("server_name = abc'def", {}, "error: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got 'd' instead.'"),
    ('server_name = "a"b', {}, "error: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got 'b' instead.'"),
    ("server_name = 'a'b", {}, "error: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got 'b' instead.'"),
    ('server_name = ab"c"', {}, 'sha256:1f030ce9409dfaac510dad5c5af6384c74834fcfef643fdaac0bdbe68f23f8f4'),
    ("include 'a b.conf'", {}, "error: error parsing include file 'a b.conf', open a b.conf: no such file or directory"),
    ('port = 4222\ninclude nope.conf', {}, "error: error parsing include file 'nope.conf', open nope.conf: no such file or directory"),
    ('INCLUDE = 4', {}, "error: error parsing include file '=', open =: no such file or directory"),
    ('Include nope.conf', {}, "error: error parsing include file 'nope.conf', open nope.conf: no such file or directory"),
    ('server_name = (\n x\n)\n', {}, 'parses'),
    ('authorization {\n  timeout: 2\n  include ./users.conf\n}', {}, 'parses'),
    ('authorization {\n  include "users.conf"\n  users = [ {user: a, password: $PW} ]\n}', {}, 'sha256:de6f79c0a988693f02bd747defa7a96cf329d5f855fe5a580d50fda59a914a4e'),
    ("authorization { include 'users.conf' }\nserver_name = $PW", {}, "error: variable reference for 'PW' on line 2 can not be found"),
    ('NAME = foo\ninclude envinc.conf', {}, "error: error parsing include file 'envinc.conf', variable reference for 'NAME' on line 1 can not be found"),
    ('include envinc.conf', {'NAME': 'bar'}, 'sha256:026907a61901a70d388bec18ea8d0ef83e45a9d500d2ad0e69af39bdd52c96e0'),
    ('include bad_inc.conf', {}, 'parses'),
    ('include sub/inc.conf', {}, 'sha256:ad2c8f5bce7adaa3ee8828ef65cd13e4aecd67d636f91244dd9f8475982499d0'),
    ('include nope.conf', {}, "error: error parsing include file 'nope.conf', open nope.conf: no such file or directory"),
    ('include "sub"', {}, "error: error parsing include file 'sub', read sub: is a directory"),
    ('SERVER_PORT = 4222\nserver_name: "node-a"\nhost: 127.0.0.1\nport: $SERVER_PORT          // a variable must be the whole value\nhttp: 127.0.0.1:8222\nmax_payload: 2MB\nmax_pending: 64MB\nmax_control_line: 4KB\nmax_connections: 10k\nping_interval: "30s"\nping_max: 3\nwrite_deadline: "5s"\nlame_duck_duration: "2m"\nlame_duck_grace_period: "10s"\ntrace: off\nauthorization {\n  timeout: 2\n  include ./users.conf\n}\ncluster {\n  name: "C1"\n  listen: "127.0.0.1:6222"\n  advertise: "127.0.0.1:6222"\n  no_advertise: false\n  connect_retries: 5\n  pool_size: -1\n  compression: off\n  authorization { user: route_user, password: $ROUTE_PASS, timeout: 2 }\n  routes = [\n    nats-route://route_user:rpw@127.0.0.1:6223\n    nats-route://route_user:rpw@127.0.0.1:6224\n  ]\n}', {}, "error: variable reference for 'ROUTE_PASS' on line 28 can not be found"),
    ('SERVER_PORT = 4222\nport: $SERVER_PORT\ncluster {\n  authorization { user: route_user, password: $ROUTE_PASS, timeout: 2 }\n}', {'ROUTE_PASS': 'rpw'}, 'sha256:69f4a392c0c0174c32eb46fe3a84d2e83bf693d7bce9a91426008696aa04ffd5'),
    ('{\n  "http_port": 8227,\n  "port": 4227,\n  "write_deadline": "1h",\n  "cluster": {\n    "port": 6222,\n    "routes": [\n      "nats://127.0.0.1:4222",\n      "nats://127.0.0.1:4223",\n      "nats://127.0.0.1:4224"\n    ]\n  }\n}', {}, 'sha256:eea7dd93417c925a6a9a367e65d28312e910831d82f7a0b95d5ceb852169de93'),
    ('{"http_port": 8227,"port": 4227,"write_deadline": "1h","cluster": {"port": 6222,"routes": ["nats://127.0.0.1:4222","nats://127.0.0.1:4223"]}}', {}, 'sha256:58a3895a899da717a8b3f1abbd994db2a37936fe84673d01181241b22e16a54b'),
    ('{\n  "jetstream": {\n    "store_dir": "/tmp/nats"\n    "max_mem": 1000000,\n  },\n  "port": 4222,\n  "server_name": "nats1"\n}', {}, 'sha256:86ff0707f289f027bb81940b36c580f5e97c50fc774639c4756a95da623ba1e1'),
    ('P = 4222\ncluster { port = $P, name = x }', {}, 'sha256:9e415cfd75ca48b3bd9e4714162185d6765c03fe094548c81366a40a5b856775'),
    ('cluster { P = 6222, port = $P, name = x }', {}, 'sha256:8fb67eb3f27cdb3f5b2893d50e3dffa80074496fbf76631dd2f6d927c04cdd7d'),
    ('cluster { P = 6222, port = $P, name = $Q }', {}, "error: variable reference for 'Q' on line 1 can not be found"),
    ('A = $B', {}, "error: variable reference for 'B' on line 1 can not be found"),
    ('A = { b = 1 }\ncluster = $A', {}, 'parses'),
    ('authorization { timeout: 0.125 }', {}, 'sha256:77134e869fdc27fcd568bcbc0c24a57ce910037ed1d81f90348f32a80dca92d6'),
    ('authorization { timeout: 1e3 }', {}, 'error: Parse error on line 1: \'Expected a map value terminator "," or a map terminator "}", but got \'3\' instead.\''),
    ('authorization { timeout: 100.5 }', {}, 'parses'),
    ('authorization { timeout: "3s" }', {}, 'sha256:39e18f58995a25b2ebefd1fbfcaaa2d2bf82cb5577dbffa2490fcc34d45b4f40'),
    ('authorization { timeout: 3 }\nauthorization { user = x }', {}, 'sha256:08a2fbcf11005b05d44035ab10c0397bf402562a3701173d96208c2f9db0b829'),
    ('server_name = <a&b>', {}, 'sha256:31525095e620b094b4de67a68a4ef78f98c84727f5bdec161e75bc9b992c875a'),
    ('server_name = "ü\\u2028"', {}, 'error: Parse error on line 1: \'Invalid escape character \'u\'. Only the following escape characters are allowed: \\xXX, \\t, \\n, \\r, \\", \\\\.\''),
    ('server_name = "tab\\there"', {}, 'sha256:99d2a6244deea5f07f0896041ae4e295ed6216d4a44316dc87e98d17c45a4915'),
    ('server_name = "ctl\\x01x"', {}, 'sha256:f28851d3f7eea413b974aa2e8c57870bb4878efc67e0eff695bd8a4ed826576c'),
    ('server_name = "q\\"q"', {}, 'sha256:1f0b28711099fb2a112569dbf23c20cbbf8389a946c87f525e962bf65c8780ba'),
    ('port = 4222\t# tab before comment', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('port = 4222\t;\thttp_port = 1', {}, 'sha256:355d9fb09e18acaad2673bff94d3624de43317486fd2334608a46a26926e17c8'),
    ('port:4222,http_port:8222', {}, 'sha256:e1de37c563dc2a33a5197af8e1150847495a17cf64705d1e2f10e5449aa8e601'),
    ('port=4222;http_port=8222;', {}, 'sha256:e1de37c563dc2a33a5197af8e1150847495a17cf64705d1e2f10e5449aa8e601'),
    ('port 4222 http_port 8222', {}, "error: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got 'h' instead.'"),
    ('port = 4222\n\thttp_port\t8222', {}, 'sha256:e1de37c563dc2a33a5197af8e1150847495a17cf64705d1e2f10e5449aa8e601'),
    ('   \nport = 4222 #', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('port = 4222 // x\n// y\n# z', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('port = 4222 #x\n}', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('{ # c\nport = 4222 }', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('{ port = 4222 # c\n}', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('{ port = 4222 } # x', {}, 'sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e'),
    ('{ port = 4222 } port2 = 1', {}, 'parses'),
    ('{ port = 4222 }\nhttp_port = 8222', {}, 'sha256:e1de37c563dc2a33a5197af8e1150847495a17cf64705d1e2f10e5449aa8e601'),
    ('{ port = 4222 }}}', {}, 'error: config is invalid (x.conf:1:17)'),
    ('{{ port = 4222 }} , http_port = 1', {}, "error: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got '=' instead.'"),
    ('{{ port = 4222 } , http_port = 1 }', {}, 'sha256:355d9fb09e18acaad2673bff94d3624de43317486fd2334608a46a26926e17c8'),
    ('{{ port = 4222 } # x\n http_port = 1 }', {}, 'sha256:355d9fb09e18acaad2673bff94d3624de43317486fd2334608a46a26926e17c8'),
    ('cluster { routes = [\n  # only comments\n] }', {}, 'sha256:49ff4848a285b4cb7b37d7261cbcda5a39c091ac55ba245944925baf30ea4f11'),
    ('cluster { routes = [] }', {}, 'sha256:49ff4848a285b4cb7b37d7261cbcda5a39c091ac55ba245944925baf30ea4f11'),
    ('cluster { routes = [ "a", ] }', {}, 'sha256:c0cdd1ade09f7036255b22237cd8331fcba546dd5f3ea542b7ef3c6ea237ae11'),
    ('cluster { routes = [ "a" , "b" ,\n] }', {}, 'sha256:2c41c0bb7ff45111e75520226fd07ee0f6979d833153fc1746571d0b641b5f74'),
    ("cluster { routes: [ 'a' 'b' ] }", {}, 'error: Parse error on line 1: \'Expected an array value terminator "," or an array terminator "]", but got \'\'\' instead.\''),
    ('cluster { routes: [ a b ] }', {}, 'error: Parse error on line 1: \'Expected an array value terminator "," or an array terminator "]", but got \'b\' instead.\''),
    ('cluster { routes: [ a\nb ] }', {}, 'sha256:2c41c0bb7ff45111e75520226fd07ee0f6979d833153fc1746571d0b641b5f74'),
    ('cluster {\n  # comment\n  name: x # trailing\n  // slash\n  port: 6222 // trailing\n}', {}, 'sha256:74e22313b6aacfc7eb8208dceb4561bf9bcc8c2ecf2a5b5a98f56d21714a66d5'),
    ('cluster { name: x; }', {}, 'sha256:6d8902a7daa0b7f4529bc7e0a4304ff73f17fca36b239afeccc27f09d1bdd82c'),
    ('cluster { name x }', {}, 'sha256:6d8902a7daa0b7f4529bc7e0a4304ff73f17fca36b239afeccc27f09d1bdd82c'),
    ('cluster { name\nx }', {}, 'sha256:6d8902a7daa0b7f4529bc7e0a4304ff73f17fca36b239afeccc27f09d1bdd82c'),
    ('cluster { name =\nx }', {}, 'sha256:6d8902a7daa0b7f4529bc7e0a4304ff73f17fca36b239afeccc27f09d1bdd82c'),
    ("cluster { 'name' = x }", {}, 'sha256:6d8902a7daa0b7f4529bc7e0a4304ff73f17fca36b239afeccc27f09d1bdd82c'),
    ('cluster { "name" x }', {}, 'sha256:6d8902a7daa0b7f4529bc7e0a4304ff73f17fca36b239afeccc27f09d1bdd82c'),
    ('cluster { name: "x }', {}, "error: Parse error on line 1: 'Unexpected EOF.'"),
    ("cluster { name: 'x", {}, "error: Parse error on line 1: 'Unexpected EOF.'"),
    ('server_tags: [a, "b", \'c\']', {}, 'sha256:6a740f563c270b0e0256b4efb83fe8f46ca5bc319a2213f41a4e5bbfad8c8541'),
    ('server_tags: [ [a], {b: 1} ]', {}, 'parses'),
    ('max_payload: 1k2', {}, "error: Parse error on line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got '2' instead.'"),
    ('max_payload: 1kb ; port: 1', {}, 'sha256:fae1d874d9727361d9ff30ed4ddcb3749cd52487f36a25eac3e9d5dc1715bf3e'),
    ('max_payload: 1KIB', {}, 'sha256:69d37599f3dcc020f444a403ec390fbe5dbf935801478cd99fc4370082d38df4'),
    ('max_payload: 1TB', {}, 'parses'),
    ('max_payload: 1e', {}, 'parses'),
    ('max_payload: 8e', {}, 'parses'),
    ('max_payload: 9e', {}, 'parses'),
    ('max_payload: 9223372036854775807', {}, 'parses'),
    ('max_payload: 9223372036854775808', {}, "error: integer '9223372036854775808' is out of the range"),
    ('max_payload: -9223372036854775808', {}, 'sha256:4b76a5f416a59bea2f5eee2313fecdcfc62618be4610b5a4459868903bb85bfb'),
    ('authorization { timeout: 0.0000001 }', {}, 'sha256:0cf2519d83b3592eb5f3f80f08033e24f0af96eb50a24964c7bb965f0f5003a1'),
    ('authorization { timeout: 123456789012345678901234.5 }\n', {}, 'parses'),
]
# fmt: on


@pytest.mark.parametrize("text,env,expected", GO_AGREES)
def test_agrees_with_nats_server(in_conf_dir: Path, text: str, env: dict, expected: str) -> None:
    """`sha256:...`: valid, with nats-server's digest; `error: ...`: nats-server's parse error;
    `parses`: nats-server's parser accepts it (its options layer then complains)."""
    (in_conf_dir / "x.conf").write_text(text)
    if expected.startswith("error: "):
        with pytest.raises(ConfError) as e:
            parse_file_tokens("x.conf", env=env)
        assert str(e.value) == expected.removeprefix("error: ")
    else:
        tokens = parse_file_tokens("x.conf", env=env)
        if expected != "parses":
            assert digest(tokens) == expected
