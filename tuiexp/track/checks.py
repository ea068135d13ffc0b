"""What `track.log` accepts, checked at the call so a mistake raises in the caller.

The checks are cheap on purpose (the budget is ~2 µs a call with 3 metrics):
a name is matched against the pattern once and then remembered, a plain
float or int passes on a type test, and an array or tensor is judged by its
shape and dtype alone — reading its value would wait for the device, so that
stays with the flush thread.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable
from typing import Any

from ..store.events import RESERVED
from ..store.metrics import MAX_EPOCH, MAX_STEP, NAME

NAME_RE = NAME  # the naming rule, as the index applies it
INT_LIMIT = MAX_STEP  # steps, epochs and integer values must fit SQLite's INTEGER


def check_name(name: str) -> None:
    """Raise ValueError unless `name` is a legal, unreserved metric name."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValueError(f"metric name {name!r} is not valid: use 1 to 128 of "
                         "A-Z a-z 0-9 _ . / - (for example 'val/acc').")
    if name in RESERVED:
        raise ValueError(f"metric name {name!r} is reserved ({', '.join(sorted(RESERVED))}).")


def check_index(what: str, value: Any) -> int:
    """A step, an int in [0, 2**63), or an epoch, an int in [0, 2**31) (numpy ints and
    the like are converted)."""
    if type(value) is not int:
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise TypeError(f"track.log: {what} must be an int, got "
                            f"{type(value).__name__} {value!r:.40}.")
        value = operator.index(value)
    limit, shown = (MAX_EPOCH, "2**31") if what == "epoch" else (INT_LIMIT, "2**63")
    if not 0 <= value < limit:
        raise ValueError(f"track.log: {what} must be in [0, {shown}), got {value}.")
    return value


def check_confusion(labels: Any, matrix: Any) -> tuple[list[str], list[list[float]]]:
    """A confusion matrix as stored: `labels` strings, `matrix` n x n for n labels (rows
    true classes, columns predicted), cells finite and not negative. ValueError or
    TypeError, naming what is wrong, otherwise."""
    names = list(labels)
    if not names or not all(isinstance(n, str) for n in names):
        raise TypeError("track.confusion: labels must be a non-empty list of strings.")
    rows = matrix.tolist() if hasattr(matrix, "tolist") else [list(r) for r in matrix]
    n = len(names)
    if len(rows) != n or any(not isinstance(r, list) or len(r) != n for r in rows):
        shape = f"{len(rows)} rows of " + ",".join(
            sorted({str(len(r)) if isinstance(r, list) else "?" for r in rows})) if rows else "empty"
        raise ValueError(f"track.confusion: the matrix must be {n}x{n} for {n} labels "
                         f"(rows: true class, columns: predicted), got {shape}.")
    for i, r in enumerate(rows):
        for j, v in enumerate(r):
            if (isinstance(v, bool) or not isinstance(v, (int, float))
                    or not math.isfinite(v) or v < 0):
                raise ValueError(f"track.confusion: cell [{i}][{j}] = {v!r:.40} is not a "
                                 "finite count >= 0.")
    return names, rows


def check_value(name: str, value: Any) -> Any:
    """The value to store for metric `name`, or TypeError if it is not a real number.

    Plain numbers come back as they are (an int too large for 64 bits as a float);
    a one-element tensor or numpy value comes back unread: the flush thread turns
    it into a number, so the caller's loop never waits for the device here."""
    check = _BY_TYPE.get(type(value))
    if check is not None:
        return check(name, value)
    if isinstance(value, bool):
        raise _not_a_number(name, value, "a bool is not a number")
    if isinstance(value, int):
        return value if -INT_LIMIT <= value < INT_LIMIT else _big_int(value)
    if isinstance(value, float):
        return value
    numel = getattr(value, "numel", None)
    if callable(numel) and hasattr(value, "dtype"):  # a torch tensor (or alike)
        _BY_TYPE[type(value)] = _check_tensor
        return _check_tensor(name, value)
    if hasattr(value, "dtype") and hasattr(value, "size"):  # numpy/jax scalar or array
        _BY_TYPE[type(value)] = _check_array
        return _check_array(name, value)
    if isinstance(value, numbers.Real):  # Fraction and friends
        return float(value)
    raise _not_a_number(name, value, "pass a number")


def _check_tensor(name: str, value: Any) -> Any:
    """A tensor of one real element, judged by shape and dtype (no device sync)."""
    numel = value.numel()
    if numel != 1:
        raise _not_a_number(name, value, f"a tensor of {numel} elements; log .mean() or one item")
    dtype = value.dtype
    if dtype not in _REAL_DTYPES:
        if getattr(dtype, "is_complex", False) or str(dtype).endswith("bool"):
            raise _not_a_number(name, value, f"a {dtype} tensor")
        _REAL_DTYPES.add(dtype)
    return value


def _check_array(name: str, value: Any) -> Any:
    """A numpy (or alike) scalar or array of one int/float element."""
    if value.size != 1:
        raise _not_a_number(name, value, f"an array of {value.size} elements")
    if getattr(value.dtype, "kind", "") not in ("i", "u", "f"):
        raise _not_a_number(name, value, f"dtype {value.dtype}")
    return value


def _check_int(name: str, value: int) -> Any:
    return value if -INT_LIMIT <= value < INT_LIMIT else _big_int(value)


def _check_bool(name: str, value: Any) -> Any:
    raise _not_a_number(name, value, "a bool is not a number")


#: how to check a value of a type met before (filled as tensor and array types appear)
_BY_TYPE: dict[type, Callable[[str, Any], Any]] = {int: _check_int, bool: _check_bool}
_REAL_DTYPES: set[Any] = set()  # tensor dtypes already found real


def _big_int(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.copysign(math.inf, value)


def _not_a_number(name: str, value: Any, hint: str) -> TypeError:
    return TypeError(f"track.log: metric {name!r} must be a real number, got "
                     f"{type(value).__name__} {_short(value)} ({hint}).")


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = object.__repr__(value)
    return text if len(text) <= 60 else text[:57] + "..."
