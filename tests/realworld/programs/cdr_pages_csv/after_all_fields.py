"""Every call detail record since a date, page after page, into a CSV.

Modelled on carrierx/cdr-apps (after_all_fields.py): ask CarrierX's call detail records API for
the first record after a date, write the CSV header and row, then keep asking for the next
page ``after`` the last record's sid until a page comes back empty, printing a running count.
Ours asks for pages of 4 and writes ``calls.csv``; the API's address comes from REALWORLD_API.
Shape: pagination, each request made from the previous answer (no list of items).
"""

import csv
import os

import requests

URL = os.environ.get("REALWORLD_API", "https://api.carrierx.com") + "/carrierx/core/v2/calls/call_drs"
HEADERS = {"Authorization": "Bearer 12345678-abcd-1234-abcd-1234567890ab"}
DATE = "2020-03-15"


def export_calls(path):
    first = requests.get(URL, headers=HEADERS, timeout=10,
                         params={"limit": "1", "order": "date_stop asc", "filter": f"date_stop ge {DATE}"}).json()
    items = first["items"]
    if not items:
        print(f"No calls since {DATE}")
        return 0
    count = 1
    with open(path, "w", encoding="UTF8", newline="") as csv_file:
        writer = csv.writer(csv_file)
        writer.writerow(list(items[0]))
        writer.writerow(list(items[0].values()))
        print(f"{count}. {items[0]['dr_sid']}")
        sid = items[0]["dr_sid"]
        while True:
            page = requests.get(URL, headers=HEADERS, timeout=10,
                                params={"limit": "4", "order": "date_stop asc", "after": sid}).json()["items"]
            if not page:
                print("No more new calls")
                break
            for item in page:
                count += 1
                writer.writerow(list(item.values()))
                print(f"{count}. {item['dr_sid']}")
            sid = page[-1]["dr_sid"]
    return count


if __name__ == "__main__":
    export_calls("calls.csv")
