"""The declarative validation layer: each constraint accepts what it declares, and errors name the fix."""

import numpy as np
import pandas as pd
import pytest

from leakage_core.validation import (
    AllOf,
    AnyOf,
    Directory,
    InstanceOf,
    Integer,
    InvalidParameterError,
    NonEmpty,
    OneOf,
    Optional,
    Real,
    SubsetOf,
    check_params,
)


@pytest.mark.parametrize(
    "constraint, good, bad",
    [
        (OneOf(("a", "b")), ["a", "b"], ["c", None, ["a"]]),
        (Integer(low=1), [1, 5, np.int64(3)], [0, -1, 1.0, True, "2", None]),
        (Integer(low=1, high=3), [1, 3], [4, 0]),
        (Real(gt=0), [1e-4, 2, np.float32(0.5)], [0, -1.0, float("nan"), float("inf"), True, "1"]),
        (Real(ge=0), [0, 0.0, 3.5], [-0.1]),
        (InstanceOf(pd.DataFrame, "a DataFrame"), [pd.DataFrame()], [{}, None]),
        (Optional(Integer(low=0)), [None, 0, 7], [-1, 0.5]),
        (NonEmpty(), [[1], (0,), pd.DataFrame({"a": [1]})], [[], (), pd.DataFrame(), 3]),
        (SubsetOf(("x", "y")), [[], ["x"], ("x", "y")], [["z"], "x", 5, [["x"]]]),
        (AllOf((NonEmpty(), SubsetOf(("x",)))), [["x"]], [[], ["y"]]),
        (AnyOf((Integer(low=1), OneOf((-1,)))), [1, 8, -1], [0, -2]),
    ],
)
def test_constraints_accept_what_they_declare(constraint, good, bad):
    assert all(constraint.accepts(v) for v in good)
    assert not any(constraint.accepts(v) for v in bad)


def test_directory_accepts_folders_and_new_paths_not_files(tmp_path):
    file = tmp_path / "f.txt"
    file.write_text("x")
    d = Directory()
    assert d.accepts(tmp_path) and d.accepts(str(tmp_path / "new" / "deeper"))
    assert not d.accepts(file) and not d.accepts(3)
    assert "is a file" in d.detail(file)


def test_error_names_the_parameter_the_fix_and_the_value():
    with pytest.raises(InvalidParameterError) as err:
        check_params(
            {"batch_size": 0, "seed": 1},
            {"seed": Integer(low=0), "batch_size": Integer(low=1)},
            hints={"batch_size": "windows per update"},
        )
    assert str(err.value) == "batch_size must be a positive integer, got 0; windows per update."
    assert isinstance(err.value, ValueError)


def test_subset_error_lists_missing_and_available_names():
    with pytest.raises(ValueError) as err:
        check_params({"by": ["attack", "colour"]}, {"by": SubsetOf(("attack", "subject"), "columns")})
    assert str(err.value) == (
        "by must be columns from ['attack', 'subject'], got ['attack', 'colour'] (['colour'] not among them)."
    )


def test_only_constrained_parameters_are_checked_and_long_values_are_cut():
    check_params({"free": object(), "n": 2}, {"n": Integer(low=1), "absent": Integer()})  # no error
    with pytest.raises(ValueError) as err:
        check_params({"frame": pd.DataFrame(columns=[f"column{i}" for i in range(50)])}, {"frame": NonEmpty()})
    assert "\n" not in str(err.value) and len(str(err.value)) < 160


def test_a_combination_explains_the_part_that_failed():
    both = {"subjects": AllOf((NonEmpty("a non-empty list"), SubsetOf((1, 2), "subject ids")))}
    with pytest.raises(ValueError) as err:
        check_params({"subjects": []}, both)
    assert str(err.value) == "subjects must be a non-empty list, got []."
    with pytest.raises(ValueError) as err:
        check_params({"subjects": [3]}, both)
    assert str(err.value) == "subjects must be subject ids from [1, 2], got [3] ([3] not among them)."
    with pytest.raises(ValueError, match=r"n_jobs must be a positive integer or -1, got 0\."):
        check_params({"n_jobs": 0}, {"n_jobs": AnyOf((Integer(low=1), OneOf((-1,))))})


def test_the_contract_suites_shared_helpers():
    from leakage_core.validation import BAD_STRING, bad_option_value, raises_value_error

    assert bad_option_value("mean") == BAD_STRING and bad_option_value(3) == -1 and bad_option_value(0.5) == -1
    assert bad_option_value(True) is None and bad_option_value(None) is None and bad_option_value((1, 2)) is None

    def refuse(message):
        def fn():
            raise ValueError(message)

        return fn

    assert raises_value_error(refuse("eps must be positive"), "eps") is None
    assert "does not name ['eps']" in raises_value_error(refuse("bad value"), "eps")
    assert raises_value_error(lambda: None) == "it raised nothing"
    assert "KeyError" in raises_value_error(lambda: {}["x"], "x")
