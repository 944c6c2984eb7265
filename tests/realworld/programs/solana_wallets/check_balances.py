"""SPL token balances of a list of Solana wallets, through the public JSON-RPC endpoint.

Modelled on BallisticCrypto/multi-token-solana-checker (check_balances.py): with nothing but
requests, POST ``getTokenAccountsByOwner`` to the Solana RPC and sum each account's balance,
printing one line per token. Ours walks several wallets; for each it lists the token accounts,
asks ``getTokenAccountBalance`` for each account (a second, chained JSON-RPC call) and GETs the
wallet's label from an explorer; the RPC's address comes from REALWORLD_API.
Shape: reads sent as POST (JSON-RPC), chained per item, plus a GET.
"""

import os

import requests

BASE = os.environ.get("REALWORLD_API", "https://api.mainnet-beta.solana.com")
RPC_URL = BASE + "/solana"
EXPLORER = BASE + "/explorer/account/"
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"

WALLETS = [
    "3eURboCzqqs3UBALFKmKBB91gqTjnLTraUE5oNGtF7sH",
    "BVFMRXNQo24SJUH1yMwaUFLp4R2fCPUFCZPnTV6ma8Nt",
    "61rVn8zeoikzFuT2cuXAd3Qv9RxhMDvG52xL4LHLv7Nu",
    "vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg",
    "4wRmv4Bbw19xBrJG4nMpbrDukicDU1PDuXewfxZZ3EkU",
    "Y5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j",
    "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
    "5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1",
]


def rpc(method, params):
    payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return requests.post(RPC_URL, json=payload, timeout=10).json()["result"]["value"]


def check_wallets(wallets):
    totals = {}
    for wallet in wallets:
        accounts = rpc("getTokenAccountsByOwner", [wallet, {"programId": TOKEN_PROGRAM}, {"encoding": "jsonParsed"}])
        total = 0.0
        for account in accounts:
            balance = rpc("getTokenAccountBalance", [account["pubkey"]])
            total += float(balance["uiAmountString"])
        label = requests.get(EXPLORER + wallet, timeout=10).json()["label"] or "-"
        print(f"{wallet[:8]}…  accounts={len(accounts)}  total={total:.6f}  label={label}")
        totals[wallet] = round(total, 6)
    return totals


if __name__ == "__main__":
    result = check_wallets(WALLETS)
    print(f"{sum(1 for v in result.values() if v)} of {len(result)} wallets hold tokens")
