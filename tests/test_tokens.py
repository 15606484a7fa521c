"""The tokenizer mirrors the server's config-line splitting (sdssplitargs)."""

import random

import pytest
from support.fuzz_cases import random_tokens

from valkey_bundle.tokens import QuoteError, join_config_args, quote_config_arg, split_config_args


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("", []),
        ("   \t ", []),
        ("a b  c", ["a", "b", "c"]),
        ('--save ""', ["--save", ""]),
        ("'single quoted' x", ["single quoted", "x"]),
        (r'"a\"b" "c\\d"', ['a"b', "c\\d"]),
        (r'"\n\r\t\b\a"', ["\n\r\t\b\a"]),
        (r'"\x41\x7a"', ["Az"]),
        (r'"\x4"', ["x4"]),  # not two hex digits: a plain escaped x
        (r"'it\'s'", ["it's"]),
        (r"'a\nb'", ["a\\nb"]),  # single quotes keep backslashes except before '
        ('ab"cd ef"', ["abcd ef"]),  # a quote may open mid-token
        ('"a"b\'c\'d ""e', ["abcd", "e"]),  # and close mid-token (Valkey 9)
        ("a\udcffb \"\udcff\" '\udcff'", ["ab", "", ""]),  # a raw 0xff byte is lost
        ("back\\slash", ["back\\slash"]),  # outside quotes a backslash is literal
        ('"\\xc3\\xa9"', ["é"]),  # escaped UTF-8 bytes decode to the character
        ('"\\xff"', ["\udcff"]),  # a lone byte stays a surrogate escape
        ("né 😀", ["né", "😀"]),
        ("a\vb", ["a\vb"]),  # \v ends no bare token (only space, \t, \r, \n do)
    ],
)
def test_split(text, tokens):
    assert split_config_args(text) == tokens


@pytest.mark.parametrize("text", ['"abc', "'abc", '"a\\"', "x 'y", 'a"b', "a'b'c'"])
def test_split_rejects_bad_quotes(text):
    with pytest.raises(QuoteError):
        split_config_args(text)


@pytest.mark.parametrize(
    "token, quoted",
    [
        ("plain", "plain"),
        ("", '""'),
        ("a b", '"a b"'),
        ('q"', '"q\\""'),
        ("\x01", '"\\x01"'),
        ("é", "é"),
        ("\udcff", '"\\xff"'),
    ],
)
def test_quote(token, quoted):
    assert quote_config_arg(token) == quoted


def test_round_trip_random_tokens():
    rng = random.Random(20261129)
    for _ in range(5000):
        tokens = random_tokens(rng)
        assert split_config_args(join_config_args(tokens)) == tokens
        always = " ".join(quote_config_arg(t, always=True) for t in tokens)
        assert split_config_args(always) == tokens
