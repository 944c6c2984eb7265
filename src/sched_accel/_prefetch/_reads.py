"""Which requests are reads: those a shadow may send ahead of the loop, keep, and serve to
the loop's own identical request. Every other request is an effect, made only by the loop.

A request is a read when it is one of these (``is_read``):

- **GET, HEAD or OPTIONS**: the safe methods (RFC 9110, 9.2.1), with or without a body. A GET
  with a body is still a read: the method says the server changes nothing, and the APIs that
  send one (Elasticsearch's ``GET /_search``) put a query in it. Its body is part of its
  identity, so it is served only to the same body. TRACE is left out (it echoes the request).
- **A GraphQL query**: a POST whose JSON body is ``{"query": "...", "operationName": ...}`` (or
  a batch list of them), or whose body is the document (``Content-Type: application/graphql``),
  when the operation that runs is a ``query``: the one ``operationName`` names, else every
  operation of the document. A ``mutation`` or ``subscription`` that runs is not a read, nor
  is a document we cannot read whole: a persisted query sent by its hash alone, a form or
  multipart body, a syntax error, a type-system definition.
- **A JSON-RPC call of a known read** (:data:`JSONRPC_READS`): a POST whose JSON body is one
  call (``{"jsonrpc": "2.0", "method": ...}``; JSON-RPC 1.0's ``"jsonrpc": "1.0"``, or a bare
  ``{"method", "params", "id"}`` as Bitcoin Core's clients send) or a batch of them, when
  every call is a read.
- **What the host declares** (``[hosts."api.example.com"] reads``, :class:`~.._settings.Reads`):
  ``"POST /graphql"`` (a method on a path; a path ending in ``*`` is a prefix), with any body,
  and ``"jsonrpc:getBalance"`` (a JSON-RPC method; ``*`` matches any characters).

The built-in JSON-RPC reads are listed by name, never by a pattern such as ``get*``: a read
we miss costs speed, a write taken for a read is sent early, and may be sent for an item
the loop never reaches. The lists (see each below):

- **Ethereum** (execution API, any EVM chain): ``eth_get*`` but ``eth_getFilterChanges`` (each
  call moves the filter on: its answer depends on the calls before it) and ``eth_getWork``
  (mining); ``eth_call``, ``eth_estimateGas`` and ``eth_createAccessList`` (they run a
  transaction on a copy of the state and keep nothing); the chain's facts (``eth_blockNumber``,
  ``eth_chainId``, ``eth_gasPrice``, ...), ``net_*`` and ``web3_*``. Not: ``eth_send*``,
  ``eth_sign*``, ``eth_new*Filter``, ``eth_uninstallFilter``, ``eth_subscribe``.
- **Solana**: its ``get*`` methods, ``isBlockhashValid``, ``minimumLedgerSlot`` and
  ``simulateTransaction`` (it runs the transaction on a copy of the bank and commits
  nothing). Not: ``sendTransaction``, ``requestAirdrop``.
- **Bitcoin Core**: its ``get*`` methods but ``getnewaddress`` and ``getrawchangeaddress``
  (each takes a key from the wallet's keypool and marks it used: a write) and
  ``getblocktemplate`` (mining: with a ``longpollid`` it waits for the next block). Not:
  ``send*``, ``create*``, ``sign*``, every other wallet method.

A POST body is read as JSON whatever its ``Content-Type`` says (urllib labels a body sent
without one a form; a real form is not JSON), but ``application/graphql``: the document.
The body is read within bounds: a body over :data:`MAX_BODY` (1 MiB) is not a read we
recognise (not even a GET's: it would be kept and compared), a JSON body that repeats a key
is not one either (servers differ on which of the two counts), and nothing here raises:
a body that is not what it claims is not a read.

GraphQL documents are read by the lexer below (the spec's tokens: names, punctuators,
strings, block strings, numbers, comments, commas) and a small state machine over the
definitions, not by graphql-core: one bit is needed (which operation types run), the lexical
grammar is short and fixed, and an optional dependency would make the verdict depend on what
else is installed.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from .._settings import Reads

__all__ = ["JSONRPC_READS", "MAX_BODY", "NOTHING_DECLARED", "Reads", "graphql_operations", "is_read"]

#: The largest body read to tell whether its request is a read (1 MiB).
MAX_BODY = 1 << 20
#: The safe methods of RFC 9110 that a client sends for an answer (not TRACE).
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
#: A host that declares nothing.
NOTHING_DECLARED = Reads()

ETHEREUM_READS = frozenset(
    {
        "eth_accounts",
        "eth_blobBaseFee",
        "eth_blockNumber",
        "eth_call",
        "eth_chainId",
        "eth_createAccessList",
        "eth_estimateGas",
        "eth_feeHistory",
        "eth_gasPrice",
        "eth_getBalance",
        "eth_getBlockByHash",
        "eth_getBlockByNumber",
        "eth_getBlockReceipts",
        "eth_getBlockTransactionCountByHash",
        "eth_getBlockTransactionCountByNumber",
        "eth_getCode",
        "eth_getFilterLogs",
        "eth_getLogs",
        "eth_getProof",
        "eth_getStorageAt",
        "eth_getTransactionByBlockHashAndIndex",
        "eth_getTransactionByBlockNumberAndIndex",
        "eth_getTransactionByHash",
        "eth_getTransactionCount",
        "eth_getTransactionReceipt",
        "eth_getUncleByBlockHashAndIndex",
        "eth_getUncleByBlockNumberAndIndex",
        "eth_getUncleCountByBlockHash",
        "eth_getUncleCountByBlockNumber",
        "eth_maxPriorityFeePerGas",
        "eth_protocolVersion",
        "eth_syncing",
        "net_listening",
        "net_peerCount",
        "net_version",
        "web3_clientVersion",
        "web3_sha3",
    }
)
SOLANA_READS = frozenset(
    {
        "getAccountInfo",
        "getBalance",
        "getBlock",
        "getBlockCommitment",
        "getBlockHeight",
        "getBlockProduction",
        "getBlockTime",
        "getBlocks",
        "getBlocksWithLimit",
        "getClusterNodes",
        "getConfirmedBlock",
        "getConfirmedBlocks",
        "getConfirmedSignaturesForAddress2",
        "getConfirmedTransaction",
        "getEpochInfo",
        "getEpochSchedule",
        "getFeeCalculatorForBlockhash",
        "getFeeForMessage",
        "getFeeRateGovernor",
        "getFees",
        "getFirstAvailableBlock",
        "getGenesisHash",
        "getHealth",
        "getHighestSnapshotSlot",
        "getIdentity",
        "getInflationGovernor",
        "getInflationRate",
        "getInflationReward",
        "getLargestAccounts",
        "getLatestBlockhash",
        "getLeaderSchedule",
        "getMaxRetransmitSlot",
        "getMaxShredInsertSlot",
        "getMinimumBalanceForRentExemption",
        "getMultipleAccounts",
        "getProgramAccounts",
        "getRecentBlockhash",
        "getRecentPerformanceSamples",
        "getRecentPrioritizationFees",
        "getSignatureStatuses",
        "getSignaturesForAddress",
        "getSlot",
        "getSlotLeader",
        "getSlotLeaders",
        "getSnapshotSlot",
        "getStakeActivation",
        "getStakeMinimumDelegation",
        "getSupply",
        "getTokenAccountBalance",
        "getTokenAccountsByDelegate",
        "getTokenAccountsByOwner",
        "getTokenLargestAccounts",
        "getTokenSupply",
        "getTransaction",
        "getTransactionCount",
        "getVersion",
        "getVoteAccounts",
        "isBlockhashValid",
        "minimumLedgerSlot",
        "simulateTransaction",
    }
)
BITCOIN_READS = frozenset(
    {
        "getaddednodeinfo",
        "getaddressesbylabel",
        "getaddressinfo",
        "getbalance",
        "getbalances",
        "getbestblockhash",
        "getblock",
        "getblockchaininfo",
        "getblockcount",
        "getblockfilter",
        "getblockhash",
        "getblockheader",
        "getblockstats",
        "getchainstates",
        "getchaintips",
        "getchaintxstats",
        "getconnectioncount",
        "getdeploymentinfo",
        "getdescriptorinfo",
        "getdifficulty",
        "gethdkeys",
        "getindexinfo",
        "getmemoryinfo",
        "getmempoolancestors",
        "getmempooldescendants",
        "getmempoolentry",
        "getmempoolinfo",
        "getmininginfo",
        "getnettotals",
        "getnetworkhashps",
        "getnetworkinfo",
        "getnodeaddresses",
        "getpeerinfo",
        "getrawmempool",
        "getrawtransaction",
        "getreceivedbyaddress",
        "getreceivedbylabel",
        "getrpcinfo",
        "gettransaction",
        "gettxout",
        "gettxoutproof",
        "gettxoutsetinfo",
        "gettxspendingprevout",
        "getunconfirmedbalance",
        "getwalletinfo",
        "getzmqnotifications",
    }
)
#: Every JSON-RPC method taken for a read on any host (case counts: Solana's ``getBalance``
#: is not Bitcoin Core's ``getbalance``, and both are reads).
JSONRPC_READS = ETHEREUM_READS | SOLANA_READS | BITCOIN_READS

#: The members of a JSON-RPC 1.0 call that names no version (Bitcoin Core's clients).
_RPC_1 = frozenset({"method", "params", "id", "version"})


def is_read(method: str, url: str, headers: Any, body: bytes | None, declared: Reads = NOTHING_DECLARED) -> bool:
    """Whether the request only reads: see the module's docstring. ``headers`` are pairs
    (str or bytes) or a mapping; ``body`` is None without one; ``declared`` is the host's
    ``reads``. Never raises: what cannot be read is not a read."""
    try:
        return _is_read(method.upper(), url, headers, body, declared)
    except Exception:  # noqa: BLE001 - a body or header of any shape: not a read we recognise
        return False


def _is_read(method: str, url: str, headers: Any, body: bytes | None, declared: Reads) -> bool:
    if body is not None and len(body) > MAX_BODY:
        return False
    if method in SAFE:
        return True
    if declared.requests and declared.request(method, urllib.parse.urlsplit(url).path or "/"):
        return True
    if method != "POST" or not body:
        return False
    if _content_type(headers) == "application/graphql":
        return _graphql_read(body.decode("utf-8"), None)
    calls = json.loads(body, object_pairs_hook=_unique)
    calls = calls if isinstance(calls, list) else [calls]
    return bool(calls) and all(_call_read(call, declared) for call in calls)


def _content_type(headers: Any) -> str:
    """The media type of ``Content-Type``, lower-cased, without parameters ("" without one)."""
    for name, value in headers.items() if hasattr(headers, "items") else headers or ():
        name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        if name.lower() == "content-type":
            value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            return value.partition(";")[0].strip().lower()
    return ""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when it repeats a key."""
    made = dict(pairs)
    if len(made) != len(pairs):
        raise ValueError("a repeated key")
    return made


def _call_read(call: object, declared: Reads) -> bool:
    """Whether one JSON-RPC call or one GraphQL request of a body only reads."""
    if not isinstance(call, dict):
        return False
    if "jsonrpc" in call or ("method" in call and "id" in call and call.keys() <= _RPC_1):
        name = call.get("method")
        version = call.get("jsonrpc", "1.0")
        return version in ("1.0", "2.0") and isinstance(name, str) and (name in JSONRPC_READS or declared.rpc(name))
    document, operation = call.get("query"), call.get("operationName")
    return isinstance(document, str) and isinstance(operation, str | None) and _graphql_read(document, operation)


# -- GraphQL -----------------------------------------------------------------------------------
#: One token of a GraphQL document (the spec's lexical grammar, section 2.1) after what it
#: ignores (white space, line ends, commas, comments), or the end of the document.
_TOKEN = re.compile(
    r"(?:[\ufeff\t \n\r,]++|#[^\n\r]*+)*+"  # possessive: a failed match never tries them again
    r'(?:(?P<end>\Z)|(?P<block>"""(?:\\"""|(?!""")[\s\S])*+""")'
    r'|(?P<string>"(?:[^"\\\n\r]|\\[^\n\r])*+")'
    r"|(?P<name>[_A-Za-z][_0-9A-Za-z]*)"
    r"|(?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<punctuator>\.\.\.|[!$&()\[\]{}:=@|]))"
)
_CLOSES = {"{": "}", "(": ")", "[": "]"}
_OPERATIONS = frozenset({"query", "mutation", "subscription"})


def graphql_operations(document: str) -> list[tuple[str, str | None]] | None:
    """The operations of a GraphQL document, in order, as (type, name or None); fragments
    are left out. None when it is not an executable document we can read whole.

    At definition level a document is a sequence of ``{ ... }`` (a query, the shorthand),
    ``query|mutation|subscription [Name] [(variables)] [@directives] { ... }`` and
    ``fragment Name on Type [@directives] { ... }``; inside brackets only their balance counts."""
    found: list[tuple[str, str | None]] = []
    brackets: list[str] = []
    state = "start"  # start: a definition begins; named: after its keyword; head: before its "{"; body: in it
    kind: str | None = None
    name: str | None = None
    position = 0
    while True:
        token = _TOKEN.match(document, position)
        if token is None:
            return None  # an unterminated string, a character GraphQL does not have
        group = token.lastgroup
        if group == "end":
            break
        position, text = token.end(), token.group(group or 0)
        if brackets:
            if text in _CLOSES:
                brackets.append(text)
            elif text in _CLOSES.values():
                if _CLOSES[brackets.pop()] != text:
                    return None
                if not brackets and state == "body":
                    state = "start"
            continue
        if state == "start":
            if text == "{":
                found.append(("query", None))
                brackets.append(text)
                state = "body"
            elif text in _OPERATIONS:
                kind, name, state = text, None, "named"
            elif text == "fragment":
                kind, state = None, "head"
            else:
                return None  # a type-system definition, or not GraphQL
        elif text == "{":
            if kind is not None:
                found.append((kind, name))
            brackets.append(text)
            state = "body"
        elif text == "(":
            brackets.append(text)
            state = "head"
        elif group == "name":
            if state == "named":
                name, state = text, "head"
        elif text == "@":
            state = "head"
        else:
            return None
    return found if state == "start" and not brackets else None


def _graphql_read(document: str, operation: str | None) -> bool:
    """Whether the operation that runs is a query: the named one, else every one."""
    found = graphql_operations(document)
    if not found:
        return False
    if operation is not None:
        return [kind for kind, name in found if name == operation] == ["query"]
    return all(kind == "query" for kind, _ in found)
