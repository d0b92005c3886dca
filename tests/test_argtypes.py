"""posebook.argtypes: the command lines' argument types name the bad value."""
import argparse

import pytest

from posebook import argtypes


def test_positive_int_accepts_whole_numbers_from_one_and_names_anything_else():
    assert argtypes.positive_int("1") == 1 and argtypes.positive_int("32") == 32
    for bad in ("0", "-3", "2.5", "eight", ""):
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected an integer >= 1, got {bad!r}"):
            argtypes.positive_int(bad)


def test_input_size_reads_height_by_width():
    assert argtypes.input_size("256x192") == (256, 192) and argtypes.input_size("96X64") == (96, 64)
    for bad in ("256", "256x192x3", "axb", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="must look like 256x192"):
            argtypes.input_size(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="must be positive"):
        argtypes.input_size("0x192")
