"""The keyword half of hybrid search: BM25 over the text of the public casts at the snapshot a
question reads.

Why DuckDB's full-text search (the ``fts`` extension, from the ``duckdb-extension-fts``
wheel like the lake's other extensions): it is the engine the lake already runs on, it brings
what BM25 needs on social text without another library (lower-casing, accent stripping, the
Porter stemmer, so "invites", "inviting" and "invitations" meet in one term, and an English
stop-word list), and the payload filters a search takes (author, time range) are plain SQL
predicates on the same table, so the keyword list is filtered exactly as the vector list is.
``bm25s`` would need a stemmer package beside it and filters as score masks; ``tantivy`` is a
second engine, with its own query syntax, to keep in step with the lake.

Where the index lives: ``PRAGMA create_fts_index`` writes tables into the database that holds
the documents, and the lake's reader is read-only and locked down. So each index is an
in-memory DuckDB of its own, built from the reader's ``casts`` view at the snapshot the
question reads and cached per (lake, snapshot): every question on that snapshot, and every
search of one question, reads the same index, and its terms agree with the SQL that counts
them. A new snapshot builds a new index on its first question (about 0.2 s for the sample's 888
casts, loading the extension included; linear in the number of casts, see
``KeywordIndex.build_seconds``).

Compound words: casts write names in camel case ("ETHDenver", "MetaMask", "ChatGPT"), which
the tokenizer keeps as one term. Each such word is indexed whole and also as its parts, and so
is the same word written in lower case anywhere else ("@ethdenver"): the compounds are learnt
from the casts (``compounds``). So "Denver" finds "ETHDenver" and "@ethdenver", and a search
for "ETHDenver" also finds casts that name Denver alone, ranked below those naming the
compound.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ozi_resources.vectors import SearchFilter
from ozi_resources.warehouse import connect

EXTENSION = "fts"
INDEX_KIND = "duckdb-fts"
CACHED_INDEXES = 2  # the newest snapshot, and one more (a time-travel question, a new commit)
# BM25's usual constants (Robertson et al.; DuckDB's defaults): term-frequency saturation and
# length normalisation.
BM25_K1 = 1.2
BM25_B = 0.75

# A capital run before a capitalised word ("ETH|Denver"), a capitalised or lower-case word,
# or a capital run at the end ("Chat|GPT").
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_WORD = re.compile(r"[A-Za-z0-9]+")
_EDGES = "\"'.,;:!?()[]"

# English function words, which say nothing of a topic. Not DuckDB's built-in "english" list
# (the SMART list of 571 words): that one drops content words such as "welcome", "thanks",
# "new" and "help", which casts are about.
_FUNCTION_WORDS = """
    a an and are as at be been being but by can could did do does for from had has have he her
    hers him his how i if in into is it its me my no nor not of on or our ours she so than that
    the their theirs them then there these they this those to too us was we were what when
    where which while who whom why will with would you your yours
"""
STOP_WORDS = frozenset(_FUNCTION_WORDS.split())

_DOCUMENTS = """
    SELECT hash, fid, username, "timestamp", coalesce(text, '') AS text
    FROM casts
"""


def compound_parts(word: str) -> tuple[str, ...]:
    """The lower-case parts of a camel-case word of letters: "ETHDenver" → ("eth", "denver"),
    "MetaMask" → ("meta", "mask"), "ChatGPT" → ("chat", "gpt"). Empty for a word in one case
    ("denver", "GM"), of one part ("Denver", the plural acronym "NFTs"), with digits, or with a
    one-letter part ("iPhone", and the random case of URL ids such as "fEcU")."""
    if not word.isalpha():
        return ()
    # a plural "s" after capitals makes no part: "NFTs", "DAOs", "LLMs" are one acronym each
    # (else "NF" and "Ts", and a query for NFTs matched every cast holding a "ts"); "ChatGPTs"
    # still splits like "ChatGPT"
    parts = _PART.findall(re.sub(r"(?<=[A-Z])s$", "", word))
    if len(parts) < 2 or any(len(p) < 2 for p in parts):
        return ()
    return tuple(p.lower() for p in parts)


def compounds(texts: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Every compound the texts write in camel case, lower-cased → its parts. Learnt from the
    casts themselves, so "ethdenver" written in lower case (an @handle, a hashtag) is split
    like the "ETHDenver" others wrote."""
    found: dict[str, tuple[str, ...]] = {}
    for text in texts:
        for word in _WORD.findall(text):
            parts = compound_parts(word)
            if parts:
                found.setdefault(word.lower(), parts)
    return found


def with_parts(text: str, known: Mapping[str, tuple[str, ...]]) -> str:
    """``text`` followed by the parts of each compound in it (camel case, or ``known`` in any
    case): "at #ethdenver" → "at #ethdenver eth denver". The whole word stays, so a search for
    the compound still ranks the casts that wrote it above those naming one part."""
    extra = [
        part
        for word in _WORD.findall(text)
        for part in (compound_parts(word) or known.get(word.lower(), ()))
    ]
    return " ".join([text, *extra])


# A URL (with or without its scheme): its host's labels, and any path, query or fragment.
_URL = re.compile(
    r"(?:https?://)?((?:[a-z0-9-]+\.)+[a-z]{2,})(?::\d+)?([/?#][^\s]*)?", re.IGNORECASE
)


def site_only(text: str) -> str:
    """``text`` with each URL cut to its site's name and top-level domain:
    "https://en.m.wikipedia.org/wiki/Chicken_Dance" → "wikipedia.org". A URL's path, query
    and subdomains are ids and codes ("hl=en-GB", "en.m."), which stemmed match short topic
    words ("ENS" stems to "en") in casts that never name them; the site itself ("youtube",
    "summerofprotocols") stays, as people name it."""

    def cut(match: re.Match[str]) -> str:
        host = match.group(1)
        if match.group(2) is None and host.count(".") == 1:
            return match.group(0)  # "node.js", "warpcast.com": nothing to cut
        return ".".join(host.split(".")[-2:])

    return _URL.sub(cut, text)


# The runs of letters the index's tokenizer keeps (it drops digits and punctuation).
_LETTERS = re.compile(r"[^\W\d_]{2,}")


def query_terms(text: str) -> str:
    """The words of ``text`` a keyword query can match: its runs of two letters or more.
    The tokenizer drops digits and punctuation, and a word that ends in them ("formula1",
    "f1") leaves an empty term that matches every cast ending the same way ("That's"); a
    one-letter run ("f") names nothing."""
    return " ".join(_LETTERS.findall(text))


@dataclass(frozen=True)
class KeywordHit:
    """A cast that shares terms with the query. ``score`` is its BM25 score (> 0, larger is
    better, no fixed scale: it grows with the rarity of the terms matched and falls with the
    cast's length). ``coverage`` (0..1] is the inverse document frequency of the query terms
    it holds over that of the best-covered hit's: 1.0 for every hit of a one-term query, and
    for "purple dao" about 0.3 for a cast that says only the commoner "dao"."""

    hash: str
    fid: int
    username: str | None
    timestamp: str  # ISO 8601, UTC
    text: str
    score: float
    coverage: float


@dataclass(frozen=True)
class TermMatch:
    """One term of a keyword query: the word as queried, its inverse document frequency over
    the whole index (> 0), and the casts holding it."""

    word: str
    idf: float
    hashes: frozenset[str]


def _fts_file() -> str:
    import importlib

    module = importlib.import_module(f"duckdb_extension_{EXTENSION}")
    folder = Path(module.__file__ or "").parent
    files = sorted(folder.glob(f"extensions/*/{EXTENSION}.duckdb_extension"))
    if not files:
        raise RuntimeError(f"duckdb-extension-{EXTENSION} ships no {EXTENSION}.duckdb_extension")
    return str(files[0])


class KeywordIndex:
    """BM25 over the casts of one lake snapshot, in an in-memory DuckDB of its own.

    ``snapshot`` is the lake snapshot id it was built from, ``documents`` the number of casts
    indexed, ``build_seconds`` what building took (copying the casts in and indexing them).
    """

    def __init__(
        self, reader: duckdb.DuckDBPyConnection, snapshot: int, extension_directory: str
    ) -> None:
        started = time.perf_counter()
        self.snapshot = snapshot
        conn = connect(extension_directory, extensions=())
        installed = Path(extension_directory).glob(f"v*/*/{EXTENSION}.duckdb_extension")
        if not any(installed):
            conn.execute(f"INSTALL '{_fts_file()}'")
        conn.execute(f"LOAD {EXTENSION}")
        # Nothing this connection runs needs files or the network: the casts arrive as Arrow.
        conn.execute("SET enable_external_access = false")
        casts = reader.execute(_DOCUMENTS).fetch_arrow_table()
        texts = [site_only(t) for t in casts.column("text").to_pylist()]
        self.compounds = compounds(texts)
        words = pa.array([with_parts(t, self.compounds) for t in texts], pa.string())
        conn.register("lake_casts", casts.append_column("words", words))
        conn.execute("CREATE TABLE documents AS SELECT * FROM lake_casts")
        conn.unregister("lake_casts")
        conn.execute("CREATE TABLE stop_words (sw VARCHAR)")
        # The empty string too: the tokenizer yields one where separators end a text.
        conn.executemany("INSERT INTO stop_words VALUES (?)", [[w] for w in ["", *STOP_WORDS]])
        conn.execute(
            "PRAGMA create_fts_index('documents', 'hash', 'words', stemmer = 'porter', "
            "stopwords = 'stop_words', strip_accents = 1, lower = 1)"
        )
        conn.execute("SET lock_configuration = true")
        self._conn = conn
        self.documents = int(casts.num_rows)
        self.build_seconds = time.perf_counter() - started

    def search(
        self, text: str, flt: SearchFilter, limit: int, ignore: frozenset[str] = frozenset()
    ) -> list[KeywordHit]:
        """Casts sharing at least one term with ``text`` (after stemming and stop words),
        best BM25 first (ties by hash), at most ``limit``, within ``flt`` (author, time range
        in Unix seconds, ``since_s`` inclusive, ``until_s`` exclusive). Terms are joined by
        OR: a cast with any of them scores, one with the rarer ones scores higher. Words of
        ``ignore`` (lower case) are left out of the query."""
        kept = " ".join(w for w in text.split() if w.lower().strip(_EDGES) not in ignore)
        params: dict[str, Any] = {"q": query_terms(with_parts(kept, self.compounds)), "k": limit}
        if not params["q"]:
            return []
        clauses = ["score IS NOT NULL", *flt.sql(params)]
        # With k1 = 0 BM25 ignores term frequency and length: the score is the sum of the
        # matched terms' IDF, which is what coverage compares.
        statement = f"""
            SELECT hash, fid, username, "timestamp", text, score,
                   idf / max(idf) OVER () AS coverage
            FROM (
                SELECT hash, fid, username, "timestamp", text,
                       fts_main_documents.match_bm25(hash, $q, k := {BM25_K1}, b := {BM25_B})
                           AS score,
                       fts_main_documents.match_bm25(hash, $q, k := 0) AS idf
                FROM documents
            ) WHERE {" AND ".join(clauses)}
            ORDER BY score DESC, hash LIMIT $k"""
        rows = self._conn.cursor().execute(statement, params).fetchall()
        return [
            KeywordHit(
                h, int(f), u, t.astimezone(UTC).isoformat(), text, round(float(s), 4), float(c)
            )
            for h, f, u, t, text, s, c in rows
        ]

    def term_matches(
        self, text: str, flt: SearchFilter, ignore: frozenset[str] = frozenset()
    ) -> list[TermMatch]:
        """Each term of the query ``text`` (as ``search`` reads it: stop words and ``ignore``
        left out, compounds with their parts) that some cast within ``flt`` holds: its IDF
        and the hashes of those casts. Words that stem alike ("wallet wallets") are one
        term."""
        kept = " ".join(w for w in text.split() if w.lower().strip(_EDGES) not in ignore)
        found: dict[tuple[float, frozenset[str]], TermMatch] = {}
        for word in dict.fromkeys(query_terms(with_parts(kept, self.compounds)).split()):
            params: dict[str, Any] = {"q": word}
            clauses = ["idf IS NOT NULL", *flt.sql(params)]
            statement = f"""
                SELECT hash, idf FROM (
                    SELECT hash, "timestamp", fid,
                           fts_main_documents.match_bm25(hash, $q, k := 0) AS idf
                    FROM documents
                ) WHERE {" AND ".join(clauses)}"""
            rows = self._conn.cursor().execute(statement, params).fetchall()
            if rows:
                match = TermMatch(word, float(rows[0][1]), frozenset(h for h, _ in rows))
                found.setdefault((match.idf, match.hashes), match)
        return list(found.values())

    def close(self) -> None:
        self._conn.close()


def covering(hits: list[KeywordHit], coverage: float) -> list[KeywordHit]:
    """The hits (order kept) whose ``coverage`` is at least ``coverage`` (0..1). BM25 joins a
    query's terms by OR, so "purple dao" also finds every cast that says only "dao"; such a
    cast holds a small share of the query's weight. Coverage, unlike the BM25 score, does not
    fall with a cast's length, so a long cast that names the one topic word is kept."""
    return [h for h in hits if h.coverage >= coverage]


def topical_coverage(
    terms: Iterable[TermMatch], near: Container[str], power: float
) -> dict[str, float]:
    """hash → the share (0..1] of the query's topical weight a cast holds, for every cast
    holding a term (0 for a cast whose terms weigh nothing). A term weighs its IDF times its
    agreement with the meaning of the query, raised to ``power`` (0: plain IDF, as
    ``KeywordHit.coverage``): the share of the casts holding it that are in ``near`` (the
    vector list of the same query). Coverage by IDF alone favours a query's rarest word,
    which is often not its topic: in "the Denver conference" the one cast saying "conference"
    outweighed the thirty naming Denver, and in "welcomed new users" the casts saying "new" or
    "users" outweighed those saying "welcome"; those casts are far from the query in meaning,
    the topic's casts near it. Empty when no term agrees at all (see ``topical``)."""
    terms = list(terms)
    weights = {t.word: t.idf * _agreement(t, near) ** power for t in terms}
    held: dict[str, float] = {}
    for t in terms:
        for h in t.hashes:
            held[h] = held.get(h, 0.0) + weights[t.word]
    best = max(held.values(), default=0.0)
    return {h: w / best for h, w in held.items()} if best > 0 else {}


def topical(
    items: Iterable[list[TermMatch]], near: Container[str], power: float
) -> dict[str, float]:
    """The topical coverage (``topical_coverage``) of a topic listing several items ("NFTs or
    minting"; ``alternatives``), each item's terms weighed on their own: a cast about any one
    item is about the topic, so it takes the coverage of the item it covers best. An item
    whose casts are all far from the query in meaning ("… and that kind of thing") covers
    nothing. When no term of any item agrees, the plain IDF coverage of all the terms."""
    items = [list(terms) for terms in items]
    best: dict[str, float] = {}
    for terms in items:
        for h, share in topical_coverage(terms, near, power).items():
            best[h] = max(best.get(h, 0.0), share)
    if not any(best.values()):
        return topical_coverage([t for terms in items for t in terms], near, 0.0)
    return best


_ALTERNATIVES = re.compile(r"\s*(?:,|/|&|\band\b|\bor\b)\s*")


def alternatives(text: str) -> list[str]:
    """The items of a topic that lists several ("NFTs or minting", "AI / ChatGPT", "MetaMask,
    Rainbow and other wallets" → three): a cast about any one of them is about the topic,
    so each item's terms are weighed on their own. ``[text]`` for a topic of one item."""
    items = [item for item in _ALTERNATIVES.split(text) if item.strip()]
    return items or [text]


# The medium's shorthand for a topic's phrase: it shares no word with the phrase, and the
# embedding model does not read it as the phrase ("gm" and "good morning": cosine 0.23), yet a
# cast saying "gm" is a good-morning cast. Read both ways (``shorthand``).
SHORTHAND: dict[str, tuple[str, ...]] = {
    "good morning": ("gm",),
    "good night": ("gn",),
    "thank you": ("ty", "tysm"),
    "thanks": ("ty", "tysm"),
    "in my opinion": ("imo", "imho"),
    "to be honest": ("tbh",),
    "by the way": ("btw",),
    "let's go": ("lfg",),
    "we're all gonna make it": ("wagmi",),
    "not gonna make it": ("ngmi",),
}
_SHORTHAND_PHRASES = {
    form: [phrase for phrase, forms in SHORTHAND.items() if form in forms]
    for forms in SHORTHAND.values()
    for form in forms
}


def shorthand(item: str) -> list[str]:
    """The medium's other ways of writing ``item`` (SHORTHAND, both ways), lower case:
    "good-morning" → ["gm"], "GM" → ["good morning"], "thanks" → ["ty", "tysm"]; [] for an
    item it has none for."""
    words = " ".join(re.findall(r"[\w']+", item.lower().replace("’", "'")))
    return list(SHORTHAND.get(words, ())) or list(_SHORTHAND_PHRASES.get(words, []))


def initials(item: str) -> str | None:
    """The initials of an item of two words or more, lower case: "artificial intelligence" →
    "ai", "User Interface" → "ui"; None for an item of one word."""
    words = _LETTERS.findall(item)
    return "".join(w[0] for w in words).lower() if len(words) >= 2 else None


def _agreement(term: TermMatch, near: Container[str]) -> float:
    return sum(h in near for h in term.hashes) / len(term.hashes) if term.hashes else 0.0


_cache: OrderedDict[tuple[str, int], KeywordIndex] = OrderedDict()
_cache_lock = threading.Lock()


def index_for(
    reader: duckdb.DuckDBPyConnection, lake: str, snapshot: int, extension_directory: str
) -> KeywordIndex:
    """The keyword index of ``lake`` (its catalog) at ``snapshot``, built from ``reader``
    (which must read that snapshot) on first use and cached. Raises duckdb.Error when the
    casts cannot be read, RuntimeError / ImportError when the fts extension's wheel is
    missing (it is never downloaded)."""
    key = (lake, snapshot)
    with _cache_lock:
        index = _cache.get(key)
        if index is not None:
            _cache.move_to_end(key)
            return index
        index = KeywordIndex(reader, snapshot, extension_directory)
        _cache[key] = index
        while len(_cache) > CACHED_INDEXES:
            # Not closed: a question on another thread may still be searching it (``ozi
            # serve`` answers concurrently); DuckDB closes it with its last reference.
            _cache.popitem(last=False)
        return index
