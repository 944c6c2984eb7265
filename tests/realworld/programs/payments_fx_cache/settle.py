"""Settle the day's payments in USD, with exchange rates cached per currency.

Modelled on zachmonari/python-OOP (PaymentSystem/currency_converter.py): a payment system that
fetches exchange rates from a free API (exchangerate-api.com's ``/v4/latest/<base>``) and keeps
them in a simple module-level cache, so that converting many amounts does not hit the API
repeatedly. Ours walks a day's payments, converts each to USD with ``get_rate`` (which checks
and fills the cache, and logs each fetch) and writes ``settlement.csv``; the per-item function
is declared as the target's ``fetch``, with ``args`` naming the item's currency, as the README
shows; the API's address comes from REALWORLD_API.
Shape: a cache the per-item function reads and fills (module-level dict); repeated items; logging.
"""

import csv
import logging

from currency_converter import get_rate

PAYMENTS = [{"id": f"pay-{n:03d}", "amount": 100 + 37 * n, "currency": cur} for n, cur in enumerate(
    ["EUR", "GBP", "EUR", "JPY", "CHF", "GBP", "SEK", "EUR", "NOK", "JPY", "PLN", "CZK", "GBP", "DKK"])]


def settle(payments):
    rows = []
    for payment in payments:
        rate = get_rate(payment["currency"])
        rows.append([payment["id"], payment["currency"], payment["amount"], round(payment["amount"] * rate, 2)])
    with open("settlement.csv", "w", newline="") as f:
        csv.writer(f).writerows([["id", "currency", "amount", "usd"], *rows])
    return round(sum(r[3] for r in rows), 2)


if __name__ == "__main__":
    logging.basicConfig(filename="payments.log", level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    print("settled USD", settle(PAYMENTS))
