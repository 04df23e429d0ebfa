"""Exact comparison of metric values and their formatting in messages and reports. Pure.

Floats compare as the decimals they print as (`repr`, the shortest string that reads back to the same
float), so 0.3 - 0.1 >= 0.2 and 0.9 + 0.005 <= 0.905 hold as a person reading the numbers expects, where
binary arithmetic says otherwise. A tolerance of `ULPS` units in the last place of the largest operand then
absorbs the rounding of values that user code computed in binary (0.1 + 0.2 = 0.30000000000000004).
"""

from __future__ import annotations

import math
from decimal import Context, Decimal

ULPS = 4
_CTX = Context(prec=100)  # repr has <= 17 digits; 100 keeps differences of far-apart magnitudes exact enough


def exact(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def diff(a: float, b: float) -> Decimal:
    """a - b, computed on the printed decimals."""
    return _CTX.subtract(exact(a), exact(b))


def share(fraction: float, base: float) -> Decimal:
    """fraction * |base|, computed on the printed decimals."""
    return _CTX.multiply(exact(fraction), exact(abs(base)))


def at_least(lhs: Decimal, rhs: Decimal, *operands: float) -> bool:
    """lhs >= rhs, where a shortfall within ULPS ulps of the largest operand counts as on the boundary."""
    scale = max((abs(v) for v in operands), default=0.0)
    tolerance = Decimal(ULPS * math.ulp(scale))
    return _CTX.compare(lhs, _CTX.subtract(rhs, tolerance)) >= 0


def fmt(value: float | Decimal | None, digits: int = 4) -> str:
    """`digits` significant digits, fixed notation for everyday magnitudes, trailing zeros dropped."""
    if value is None:
        return "n/a"
    v = float(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(v)))
    if not -5 <= magnitude < 15:
        return _strip(f"{v:.{digits - 1}e}")
    decimals = max(digits - 1 - magnitude, 0)
    text = f"{v:.{decimals}f}"
    return _strip(text) if "." in text else text


def fmt_signed(value: float | Decimal, digits: int = 4) -> str:
    text = fmt(value, digits)
    return text if text.startswith("-") or text in ("NaN", "n/a") else "+" + text


def fmt_pct(value: float | Decimal | None, digits: int = 3) -> str:
    return "n/a" if value is None else fmt_signed(value, digits) + "%"


def pair(a: float | Decimal, b: float | Decimal, distinguish: bool, signed: bool = False,
         digits: int = 4) -> tuple[str, str]:
    """Formats a and b; when `distinguish`, with enough digits that different values print differently
    (so a failed check never reads "0.905 < threshold 0.905")."""
    show = fmt_signed if signed else fmt
    for shown in range(digits, 18):
        sa, sb = show(a, shown), show(b, shown)
        if not distinguish or sa != sb or float(a) == float(b):
            return sa, sb
    return repr(float(a)), repr(float(b))


def _strip(text: str) -> str:
    if "e" in text:
        mantissa, exponent = text.split("e")
        return _strip(mantissa) + "e" + exponent
    return text.rstrip("0").rstrip(".") if "." in text else text
