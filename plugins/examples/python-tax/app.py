"""gst-tax in Python: the default tax rule of orderd (18% GST on every line unless config sets
other rates), written against the `tax-rules` world of `shop:rules` and packaged as a component
with componentize-py. Same config keys, rounding and error codes as `plugins/gst-tax`, so it
answers that crate's fixtures identically.

Config: `rate.default` (basis points 0..=10000, default 1800), `rate.<category>`, `rate-name`
(default "gst"; category rates are named `<rate-name>-<category>`). Any other key is `bad-config`.
"""

from typing import List, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import (
    Money,
    OrderDraft,
    PluginError,
    RateTotal,
    TaxBreakdown,
    TaxLine,
)

MAX_BPS = 10_000
I64_MAX = 2**63 - 1


def bad_config(key: str, reason: str) -> Err:
    return Err(PluginError("bad-config", f"config key `{key[:64]}`: {reason}"))


def parse_bps(key: str, value: str) -> int:
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_BPS:
        raise bad_config(key, f"expected basis points 0..={MAX_BPS}, got {value[:32]!r}")
    return int(text)


def parse_config(config: List[Tuple[str, str]]) -> Tuple[str, int, dict]:
    name, default_bps, categories = "gst", 1800, {}
    for key, value in config:
        if key == "rate-name":
            name = value.strip()
            if not 0 < len(name) <= 64 or not name.isprintable():
                raise bad_config(key, "expected 1 to 64 printable characters")
        elif key == "rate.default":
            default_bps = parse_bps(key, value)
        elif key.startswith("rate."):
            category = key[len("rate."):]
            if not category.strip():
                raise bad_config(key, "the category after `rate.` is empty")
            categories[category.lower()] = parse_bps(key, value)
        else:
            raise bad_config(
                key, "unknown key (expected `rate.default`, `rate.<category>` or `rate-name`)"
            )
    return name, default_bps, categories


def overflow(what: str) -> Err:
    return Err(PluginError("amount-overflow", f"{what} does not fit in 64-bit minor units"))


class Tax(exports.Tax):
    def calculate(self, draft: OrderDraft, config: List[Tuple[str, str]]) -> TaxBreakdown:
        rate_name, default_bps, categories = parse_config(config)
        currency = draft.currency
        lines, by_rate, total = [], {}, 0
        for index, item in enumerate(draft.items):
            if item.unit_price.currency != currency:
                raise Err(PluginError(
                    "currency-mismatch",
                    f"line {index} is priced in {item.unit_price.currency[:16]!r}, "
                    f"the order in {currency[:16]!r}",
                ))
            if item.unit_price.amount < 0:
                raise Err(PluginError("negative-amount", f"line {index} has a negative unit price"))
            taxable = item.unit_price.amount * item.quantity
            if taxable > I64_MAX:
                raise overflow(f"the amount of line {index}")
            category = item.category.lower()
            if category in categories:
                name, bps = f"{rate_name}-{category}", categories[category]
            else:
                name, bps = rate_name, default_bps
            tax = (taxable * bps + 5_000) // 10_000  # half-up to the minor unit
            total += tax
            if total > I64_MAX:
                raise overflow("the total tax")
            sums = by_rate.setdefault((name, bps), [0, 0])
            sums[0] += taxable
            sums[1] += tax
            if sums[0] > I64_MAX:
                raise overflow(f"the taxable sum at {name}")
            lines.append(TaxLine(index, name, bps, Money(taxable, currency), Money(tax, currency)))
        return TaxBreakdown(
            lines,
            [RateTotal(n, b, Money(s[0], currency), Money(s[1], currency))
             for (n, b), s in by_rate.items()],
            Money(total, currency),
        )
