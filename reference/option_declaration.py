"""How an op's option is declared: once, with what values it takes, its default and what it
does. An op lists the declarations it takes (reference/declaration.py's Op.options); the case
loader's value checks, the case-file JSON Schema and the manifest's conditions are read from
them, so an option is written down nowhere else.

The kinds of value, and what each checks beyond its type:
- "number": a real number within minimum / maximum (each inclusive or exclusive);
- "integer", "boolean": their type only;
- "choice": one of `choices`;
- "axis": an axis of the op's prediction (an integer from -ndim to ndim - 1);
- "per_class": a list of numbers, one per class along the `axis` option;
- "number_or_per_class": a number, or a list of them, one per class along the last axis
  (a broadcast on the last axis, as PyTorch's and TensorFlow's pos_weight is);
- "per_loss": an array (literal or generated) with one number per unreduced loss.
"""
from dataclasses import dataclass
from typing import Iterable

KINDS = ("number", "integer", "boolean", "choice", "axis", "per_class", "number_or_per_class", "per_loss")


@dataclass(frozen=True, kw_only=True)
class Option:
    name: str
    kind: str
    default: object
    description: str  # one line: what the option does, as a case writer reads it
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False  # the minimum itself is refused (a positive number: > 0)
    choices: tuple = ()  # a "choice" option's values
    nullable: bool = False  # null is accepted and means unset (the default)
    # (value, other option, why): this value needs the other option given; the refusal reads
    # "<value> <why>, which is missing".
    needs: tuple[tuple[object, str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name!r}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if (self.kind == "choice") != bool(self.choices):
            raise ValueError(f"option {self.name!r}: a choice option lists its choices, and only such an option")
        bounded = self.minimum is not None or self.maximum is not None
        if bounded and self.kind not in ("number", "number_or_per_class"):
            raise ValueError(f"option {self.name!r}: only a number takes a minimum or maximum")

    def is_unset(self, value: object) -> bool:
        """Whether a value leaves the option as if not given: null, or the default."""
        if value is None or value is self.default:
            return True
        try:
            return bool(value == self.default)
        except (TypeError, ValueError):  # an array compared with a number
            return False

    def number_phrase(self) -> str:
        """What a number of it must be, in words: "a number in [0, 1]", "a positive number"."""
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f"a number in {'(' if self.exclusive_minimum else '['}{_plain(low)}, {_plain(high)}]"
        if low == 0:
            return "a positive number" if self.exclusive_minimum else "a non-negative number"
        if low is not None:
            return f"a number {'>' if self.exclusive_minimum else '>='} {_plain(low)}"
        if high is not None:
            return f"a number <= {_plain(high)}"
        return "a number"

    def number_in_range(self, value: float) -> bool:
        """Within the bounds (NaN is within none)."""
        if self.minimum is not None and not (value > self.minimum if self.exclusive_minimum else value >= self.minimum):
            return False
        return self.maximum is None or value <= self.maximum


def _plain(number: float) -> str:
    """1.0 -> 1, 0.5 -> 0.5: a bound as a person writes it."""
    return str(int(number)) if float(number).is_integer() else str(number)


def taking(*options: Option) -> dict[str, Option]:
    """An op's options, as its declaration lists them: `options=taking(REDUCTION, AXIS)`."""
    return by_name(options)


def by_name(options: Iterable[Option]) -> dict[str, Option]:
    """name -> declaration, refusing a name declared twice."""
    named: dict[str, Option] = {}
    for option in options:
        if not isinstance(option, Option):
            raise TypeError(f"an op's options are Option declarations (reference/option_declaration.py), "
                            f"got {option!r}")
        if option.name in named:
            raise ValueError(f"option {option.name!r} is listed twice")
        named[option.name] = option
    return named
