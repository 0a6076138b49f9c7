"""The SQL guard: every statement Ozi runs for a person (`ozi sql`), for the offline question
planner and for an LLM passes through ``guard`` first.

The statement is parsed with sqlglot (DuckDB dialect), never matched with regular expressions,
and what runs is the guard's own rendering of the checked tree (comments dropped), never the
text as given. When ``guard`` accepts a statement, that SQL is guaranteed to be:

* exactly one read-only query: SELECT, WITH, UNION / INTERSECT / EXCEPT, subqueries, VALUES.
  Nothing else anywhere in the tree (no DDL or DML, not even inside a CTE, no SELECT INTO,
  DESCRIBE, SUMMARIZE, SHOW, PRAGMA, SET, CALL, COPY, ATTACH, ...): every node of the tree must
  be of a kind on ``ALLOWED_NODES``;
* reading only the tables in ``allowed_tables``, or a CTE where that CTE is visible. Names are
  resolved per scope with DuckDB's rules (a CTE is visible in the rest of its WITH and below it;
  in ``WITH RECURSIVE`` a CTE whose body is ``anchor UNION [ALL] step`` is visible in the step
  only, and not at all for UNION BY NAME, INTERSECT or EXCEPT, where DuckDB reads the real
  table). A name counts as a CTE only when that resolution and sqlglot's scope analysis agree.
  No qualified names (``main.casts``, ``lake.casts``), no table functions (``read_csv``,
  ``range``, ``ducklake_snapshots``, ...; UNNEST of a list is the one exception), no file
  paths or URLs under any quoting, no time travel (``AT (VERSION => ...)``);
* calling only functions on ``ALLOWED_FUNCTIONS``: pure scalar, aggregate and window functions.
  Anything that touches files, the network, settings, variables, extensions, secrets, the
  catalog or the session is refused by name, and so are generators of arbitrary size
  (``range``, ``generate_series``, ``repeat``, ``list_resize``);
* capped: every LIMIT (outer and inner) is a whole-number literal no larger than ``limit``
  (larger ones, and LIMIT ALL, are lowered to it), the outermost query has one, and OFFSET is a
  literal no larger than ``MAX_OFFSET``. Other LIMIT / OFFSET expressions (subqueries,
  parameters, percentages, WITH TIES) are refused;
* free of invisible and control characters (zero-width spaces, bidirectional overrides, ...),
  anywhere, string literals included; table and CTE names are plain ASCII identifiers, so a
  look-alike (fullwidth letters, NFKC-equivalent characters) is refused, not resolved.

Every refusal is a ``SqlRefused`` whose message is one line naming the rule broken.

The guard is the first wall, not the only one. It does not bound time or memory: a cross join,
a runaway recursive CTE or a huge ``lpad`` is stopped by the read connection, which is locked
down separately (``WarehouseResource.reader``: external access off, no extension autoloading,
configuration locked; ``warehouse.query`` adds a timeout). The guard keeps a statement from
asking for anything outside the public tables; the connection keeps DuckDB from doing it even if
the guard is wrong.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

DEFAULT_LIMIT = 1000
# A large OFFSET makes DuckDB compute and discard that many rows; nobody pages this far.
MAX_OFFSET = 100_000
# Statements come from people and models, not from programs; a longer one is a mistake or an
# attack on the parser.
MAX_STATEMENT_CHARS = 100_000

# How the allow-list was chosen: from `SELECT DISTINCT function_name, function_type FROM
# duckdb_functions()` in DuckDB 1.5.5 (with the ducklake, httpfs, postgres and sqlite extensions
# loaded), keeping scalar, aggregate and macro functions that compute a value from their
# arguments only. Left out on purpose: every table function and pragma (read_*, glob, range,
# query, query_table, sniff_csv, parquet_*, *_scan, duckdb_*, pragma_*, ducklake_*, ...);
# session and catalog functions (current_setting, getvariable, current_query, current_database,
# current_schema, current_user, version, stats, nextval, currval, txid_current, enum_*, the
# pg_catalog macros, has_*_privilege, ...); functions with side effects (setseed, sleep_ms,
# write_log, error); SQL (de)serialisation (json_serialize_sql, json_deserialize_sql,
# json_serialize_plan); generators of arbitrary size (range, generate_series, repeat, bar,
# list_resize, array_resize, generate_subscripts, bitstring_agg); path parsing (parse_path, ...),
# URL coding, collations (icu_*), geometry (st_*), variants, type reflection (get_type,
# make_type, cast_to_type, ...), uuid generation and internal helpers (__internal_*, combine,
# finalize, remap_struct, unpivot_list, ...). Names are matched lower-cased.
_ALLOWED_BY_CATEGORY = {
    "arithmetic": """
        abs acos acosh add asin asinh atan atan2 atanh bit_count cbrt ceil ceiling cos cosh cot
        degrees divide even exp factorial fdiv floor fmod gamma gcd greatest
        greatest_common_divisor isfinite isinf isnan lcm least least_common_multiple lgamma ln log
        log10 log2 mod multiply nextafter pi pow power radians random round round_even
        roundbankers sign signbit sin sinh sqrt subtract tan tanh trunc xor
    """,
    "string": """
        ascii base64 bin bit_length char_length character_length chr concat concat_ws contains
        decode encode ends_with format format_bytes from_base64 from_hex hash hex ilike_escape
        instr lcase left left_grapheme len length length_grapheme like_escape lower lpad ltrim md5
        md5_number md5_number_lower md5_number_upper nfc_normalize not_ilike_escape
        not_like_escape octet_length ord position prefix printf replace reverse right
        right_grapheme rpad rtrim sha1 sha256 split split_part starts_with str_split string_split
        string_to_array strip_accents strlen strpos substr substring substring_grapheme suffix
        to_base64 to_hex translate trim ucase unbin unhex unicode upper
    """,
    "text similarity": """
        damerau_levenshtein editdist3 hamming jaccard jaro_similarity jaro_winkler_similarity
        levenshtein mismatches
    """,
    "regexp": """
        regexp_escape regexp_extract regexp_extract_all regexp_full_match regexp_matches
        regexp_replace regexp_split_to_array regexp_split_to_table str_split_regex
        string_split_regex
    """,
    "date and time": """
        age ago century current_date current_localtime current_localtimestamp date_add date_diff
        date_part date_sub date_trunc datediff datepart datesub datetrunc day dayname dayofmonth
        dayofweek dayofyear days_in_month decade epoch epoch_ms epoch_ns epoch_us era
        get_current_time get_current_timestamp hour isodow isoyear julian last_day make_date
        make_time make_timestamp make_timestamp_ms make_timestamp_ns make_timestamptz microsecond
        millennium millisecond minute month monthname nanosecond normalized_interval now quarter
        second strftime strptime time_bucket timezone timezone_hour timezone_minute to_centuries
        to_days to_decades to_hours to_microseconds to_millennia to_milliseconds to_minutes
        to_months to_quarters to_seconds to_timestamp to_weeks to_years today
        transaction_timestamp try_strptime week weekday weekofyear year yearweek
    """,
    "list and array": """
        aggregate apply array_aggr array_aggregate array_append array_apply array_cat
        array_concat array_contains array_cosine_distance array_cosine_similarity
        array_cross_product array_distance array_distinct array_dot_product array_extract
        array_filter array_grade_up array_has array_has_all array_has_any array_indexof
        array_inner_product array_intersect array_length array_negative_dot_product
        array_negative_inner_product array_pop_back array_pop_front array_position array_prepend
        array_push_back array_push_front array_reduce array_reverse array_reverse_sort
        array_select array_slice array_sort array_to_string array_transform array_unique
        array_value array_where array_zip cardinality filter flatten grade_up list_aggr
        list_aggregate list_any_value list_append list_apply list_approx_count_distinct list_avg
        list_bit_and list_bit_or list_bit_xor list_bool_and list_bool_or list_cat list_concat
        list_contains list_cosine_distance list_cosine_similarity list_count list_distance
        list_distinct list_dot_product list_element list_entropy list_extract list_filter
        list_first list_grade_up list_has list_has_all list_has_any list_histogram list_indexof
        list_inner_product list_intersect list_kurtosis list_kurtosis_pop list_last list_mad
        list_max list_median list_min list_mode list_negative_dot_product
        list_negative_inner_product list_pack list_position list_prepend list_product
        list_reduce list_reverse list_reverse_sort list_select list_sem list_skewness list_slice
        list_sort list_stddev_pop list_stddev_samp list_string_agg list_sum list_transform
        list_unique list_value list_var_pop list_var_samp list_where list_zip reduce unnest
    """,
    "struct, map and union": """
        element_at map map_concat map_contains map_contains_entry map_contains_value map_entries
        map_extract map_extract_value map_from_entries map_keys map_values row struct_concat
        struct_contains struct_extract struct_extract_at struct_has struct_indexof struct_insert
        struct_keys struct_pack struct_position struct_update struct_values union_extract
        union_tag union_value
    """,
    "json (on values, never files)": """
        array_to_json from_json from_json_strict json json_array json_array_length json_contains
        json_exists json_extract json_extract_path json_extract_path_text json_extract_string
        json_group_array json_group_object json_group_structure json_keys json_merge_patch
        json_object json_pretty json_quote json_structure json_transform json_transform_strict
        json_type json_valid json_value row_to_json to_json
    """,
    "aggregate": """
        any_value approx_count_distinct approx_quantile approx_top_k arbitrary arg_max
        arg_max_null arg_max_nulls_last arg_min arg_min_null arg_min_nulls_last argmax argmin
        array_agg avg bit_and bit_or bit_xor bool_and bool_or corr count count_if count_star
        countif covar_pop covar_samp entropy favg first fsum geomean geometric_mean group_concat
        histogram histogram_exact kahan_sum kurtosis kurtosis_pop last list listagg mad max
        max_by mean median min min_by mode product quantile quantile_cont quantile_disc regr_avgx
        regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy
        reservoir_quantile sem skewness stddev stddev_pop stddev_samp string_agg sum sumkahan
        var_pop var_samp variance wavg weighted_avg
    """,
    "window": """
        cume_dist dense_rank fill first_value lag last_value lead nth_value ntile percent_rank
        rank rank_dense row_number
    """,
    "conditional and types": """
        equi_width_bins nullif typeof
    """,
    # SQL constructs that sqlglot represents as functions.
    "syntax": """
        case cast coalesce collate columns exists extract if ifnull try_cast
    """,
}
ALLOWED_FUNCTIONS = frozenset(
    name for names in _ALLOWED_BY_CATEGORY.values() for name in names.split()
)

# sqlglot parses many DuckDB functions into typed expressions (strftime -> exp.TimeToStr) whose
# own name differs from DuckDB's. These are those names for the functions above, found by parsing
# each allowed function; the tests parse every DuckDB function to keep this list exact (each
# allowed one passes, every other one is refused).
_SQLGLOT_SPELLINGS = """
    approx_distinct array array_contained_by array_contains_all array_max array_min
    array_overlaps array_size bitwise_and_agg bitwise_or_agg bitwise_xor_agg cosine_distance
    current_time current_timestamp date_bin date_from_parts day_of_month day_of_week
    day_of_year dayofweek_iso euclidean_distance explode is_inf is_nan j_s_o_n_array
    j_s_o_n_object jarowinkler_similarity json_extract_scalar localtimestamp logical_and
    logical_or pad parse_json percentile_cont percentile_disc rand regexp_i_like regexp_like
    regexp_split sha sha2 str_position str_to_time struct time_from_parts time_to_str
    time_to_unix timestamp_from_parts timestamp_trunc to_map transform unix_to_time
    variance_pop week_of_year
"""
SQLGLOT_SPELLINGS = frozenset(_SQLGLOT_SPELLINGS.split())

# Every kind of node a read-only query may contain, besides functions (checked by name) and
# tables (checked by name and scope). Anything else (INTO, DESCRIBE, a DML statement in a CTE,
# a parameter, a command sqlglot could only keep as text) is refused. Exact types: a subclass
# is not allowed just because its parent is.
ALLOWED_NODES = frozenset(
    {
        # query structure
        exp.Select,
        exp.Union,
        exp.Intersect,
        exp.Except,
        exp.Subquery,
        exp.With,
        exp.CTE,
        exp.From,
        exp.Join,
        exp.Lateral,
        exp.Values,
        exp.Where,
        exp.Group,
        exp.Cube,
        exp.Rollup,
        exp.GroupingSets,
        exp.Having,
        exp.Qualify,
        exp.Order,
        exp.Ordered,
        exp.Limit,
        exp.LimitOptions,
        exp.Fetch,
        exp.Offset,
        exp.Distinct,
        exp.Window,
        exp.WindowSpec,
        exp.Filter,
        exp.WithinGroup,
        exp.IgnoreNulls,
        exp.RespectNulls,
        exp.TableSample,
        exp.Pivot,
        exp.PivotAlias,
        exp.Table,
        exp.TableAlias,
        exp.Alias,
        # values and names
        exp.Column,
        exp.Identifier,
        exp.Star,
        exp.Dot,
        exp.Var,
        exp.Literal,
        exp.Boolean,
        exp.Null,
        exp.Tuple,
        exp.Paren,
        exp.Bracket,
        exp.Slice,
        exp.Lambda,
        exp.Kwarg,
        exp.PropertyEQ,
        exp.Comprehension,
        exp.Interval,
        exp.DataType,
        exp.DataTypeParam,
        exp.ColumnDef,
        exp.JSONPath,
        exp.JSONPathRoot,
        exp.JSONPathKey,
        exp.JSONPathSubscript,
        exp.JSONPathSlice,
        exp.JSONPathWildcard,
        # operators and predicates
        exp.And,
        exp.Or,
        exp.Xor,
        exp.Not,
        exp.Neg,
        exp.Add,
        exp.Sub,
        exp.Mul,
        exp.Div,
        exp.IntDiv,
        exp.Mod,
        exp.DPipe,
        exp.BitwiseAnd,
        exp.BitwiseOr,
        exp.BitwiseXor,
        exp.BitwiseNot,
        exp.BitwiseLeftShift,
        exp.BitwiseRightShift,
        exp.EQ,
        exp.NEQ,
        exp.GT,
        exp.GTE,
        exp.LT,
        exp.LTE,
        exp.NullSafeEQ,
        exp.NullSafeNEQ,
        exp.Is,
        exp.In,
        exp.Between,
        exp.Like,
        exp.ILike,
        exp.SimilarTo,
        exp.Glob,
        exp.Escape,
        exp.Any,
        exp.All,
        exp.AtTimeZone,
        exp.Distance,
    }
)

# What may accompany a table name: an alias, joins, laterals, a PIVOT, a sample.
_TABLE_CLAUSES = frozenset({"this", "alias", "joins", "laterals", "pivots", "sample"})
# How sqlglot holds `AT (VERSION => 3)`, `FOR SYSTEM_TIME AS OF`, `CHANGES (...)`.
_TIME_TRAVEL = frozenset({"when", "version", "system_time", "changes"})
_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")
# A bare word (an interval unit, DATE_TRUNC's part, LIMIT ALL): sqlglot prints it unquoted.
_PLAIN_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH_CHARACTERS = set("/\\.:*?~%")


class SqlRefused(ValueError):
    """The statement is not a single read-only query over the public tables; the message is one
    line naming the rule it broke."""

    def __init__(self, reason: str) -> None:
        # One line, whatever a name or a parser message held.
        super().__init__(" ".join(reason.split()))


@dataclass(frozen=True)
class GuardedSql:
    sql: str  # the statement to run: the guard's rendering, LIMIT included, no comments
    tables: tuple[str, ...]  # the public tables it reads, lower-case, sorted


def guard(
    statement: str,
    allowed_tables: tuple[str, ...],
    limit: int = DEFAULT_LIMIT,
    *,
    max_offset: int = MAX_OFFSET,
) -> GuardedSql:
    """Check one statement and return it ready to run.

    ``statement`` is SQL text in DuckDB's dialect; ``allowed_tables`` the names that may be read
    (compared case-insensitively, as DuckDB does); ``limit`` the most rows any LIMIT may ask for;
    ``max_offset`` the largest OFFSET. Returns ``GuardedSql(sql, tables)``: ``sql`` is the
    statement to execute (re-rendered from the checked tree, every LIMIT capped, a LIMIT added
    when the outermost query has none), ``tables`` the public tables it reads.

    Raises SqlRefused, with a one-line reason, when the statement is empty or too long, holds an
    invisible or control character, does not parse, holds more than one statement, is anything
    but a query, contains a node or function outside the allow-lists, reads a name that is not
    in ``allowed_tables`` and not a CTE visible where it is read, or has a LIMIT / OFFSET that is
    not a plain number (or an OFFSET above ``max_offset``).
    """
    allowed = frozenset(name.lower() for name in allowed_tables)
    try:
        tree = _parse_one(statement)
        tables = _check_tree(tree, allowed)
        _cap_limits(tree, limit, max_offset)
        sql = tree.sql(dialect="duckdb", comments=False)
        # Second reading: the text that will run must pass on its own, reading the same tables.
        # This catches a rendering that would be read differently from the tree checked.
        try:
            again = _parse_one(sql)
            if _check_tree(again, allowed) != tables:
                raise SqlRefused("it reads other tables")
            _check_limits_capped(again, limit, max_offset)
        except SqlRefused as err:
            raise SqlRefused(f"the statement does not survive re-rendering: {err}") from err
    except RecursionError as err:  # sqlglot's parser and generator recurse per nesting level
        raise SqlRefused("the statement is nested too deeply to check") from err
    return GuardedSql(sql=sql, tables=tables)


# -- parsing ---------------------------------------------------------------------------------


def _parse_one(statement: str) -> exp.Expr:
    """The single statement in ``statement``, parsed; refuses empty, long, unparsable, invisible
    characters and more than one statement."""
    text = statement.strip()
    if not text.strip(";").strip():
        raise SqlRefused("empty statement")
    if len(text) > MAX_STATEMENT_CHARS:
        raise SqlRefused(f"the statement is longer than {MAX_STATEMENT_CHARS} characters")
    _check_characters(text)
    try:
        trees = sqlglot.parse(text, read="duckdb")
    except RecursionError:
        raise
    except Exception as err:  # any parser failure is a refusal, never a pass
        first_line = (str(err).splitlines() or [type(err).__name__])[0]
        raise SqlRefused(f"the statement does not parse: {first_line}") from err
    trees = [tree for tree in trees if tree is not None]  # `;;` leaves empty statements
    if not trees:
        raise SqlRefused("empty statement (nothing but comments)")
    if len(trees) != 1:
        raise SqlRefused(f"exactly one statement is allowed, got {len(trees)}")
    tree = trees[0]
    if not isinstance(tree, (exp.Select, exp.SetOperation, exp.Subquery)):
        raise SqlRefused(f"only a SELECT query is allowed, got {_first_keyword(text)}")
    return tree


def _first_keyword(text: str) -> str:
    """The statement's first word, comments skipped: how a refusal names what it got (sqlglot
    reads some statements, e.g. CHECKPOINT, as something else)."""
    try:
        tokens = sqlglot.tokenize(text, read="duckdb")
    except Exception:
        return "something else"
    return tokens[0].text.upper() if tokens else "nothing"


def _check_characters(text: str) -> None:
    """Refuse characters that hide what the statement says: zero-width and bidirectional
    formatting characters, controls, private-use and unassigned code points, and any space but
    the ASCII one (a no-break space can split a keyword for one reader and not another)."""
    for offset, char in enumerate(text):
        if char in "\t\n\r ":
            continue
        category = unicodedata.category(char)
        if category[0] == "C" or category[0] == "Z":
            name = unicodedata.name(char, "unnamed")
            raise SqlRefused(
                f"invisible or control character U+{ord(char):04X} ({name}) at offset {offset}"
            )


# -- the checks --------------------------------------------------------------------------------


def _check_tree(tree: exp.Expr, allowed: frozenset[str]) -> tuple[str, ...]:
    """Check every node of ``tree``; returns the public tables it reads."""
    if not isinstance(tree, (exp.Select, exp.SetOperation, exp.Subquery)):
        raise SqlRefused(f"only a SELECT query is allowed, got {_kind(tree)}")
    # DuckDB compares names case-insensitively (quoted ones too): check a lower-cased copy.
    tree = tree.copy()
    for identifier in tree.find_all(exp.Identifier):
        identifier.set("this", identifier.this.lower())
    nodes = list(tree.walk())
    # Node kinds first, so a write hidden in a CTE is named as a write, then what is read, then
    # what is called.
    for node in nodes:
        _check_node_kind(node)
    cte_references = _cte_references(tree)
    read = set()
    for node in nodes:
        if isinstance(node, exp.Table):
            name = _check_table(node, id(node) in cte_references, allowed)
            if name is not None:
                read.add(name)
    for node in nodes:
        if isinstance(node, exp.Func) and type(node) not in ALLOWED_NODES:
            _check_function(node)
    return tuple(sorted(read))


def _check_node_kind(node: exp.Expr) -> None:
    """Refuse a node that has no place in a read-only query (functions are checked by name)."""
    if type(node) not in ALLOWED_NODES:
        # sqlglot makes some operators (AND, OR) functions too: those are on ALLOWED_NODES
        if not isinstance(node, exp.Func):
            raise SqlRefused(f"{_kind(node)} is not allowed in a query")
    elif isinstance(node, exp.Select) and not node.expressions:
        raise SqlRefused("a SELECT needs a select list")
    elif isinstance(node, exp.CTE):
        _check_name(node.alias, "CTE name")
    elif isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
        # `main.lower(x)`, `lake.current_snapshot()`, `x.lower()`: a schema-qualified call can
        # reach another catalog's macros; the method form is the same syntax.
        raise SqlRefused(f"qualified function calls are not allowed: {node.sql(dialect='duckdb')}")
    elif isinstance(node, exp.Var) and not _PLAIN_WORD.fullmatch(node.name):
        raise SqlRefused(f"unexpected keyword {node.name!r}")
    elif isinstance(node, exp.Limit) and node.args.get("expressions"):
        raise SqlRefused("LIMIT BY is not allowed")


def _kind(node: exp.Expr) -> str:
    """How a refusal names a node: the statement keyword for commands sqlglot keeps as text."""
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return _NODE_NAMES.get(type(node), node.key.upper())


_NODE_NAMES = {
    exp.HistoricalData: "time travel (AT ...)",
    exp.Version: "time travel (FOR ... AS OF)",
    exp.Placeholder: "a query parameter ($1, ?, $name)",
    exp.Parameter: "a query parameter",
    exp.SessionParameter: "a session parameter",
    exp.Into: "SELECT INTO",
}


def _check_table(table: exp.Table, is_cte: bool, allowed: frozenset[str]) -> str | None:
    """Refuse a relation that is not a public table or a visible CTE; returns the public table's
    name (None for a CTE)."""
    if isinstance(table.this, exp.Func):
        raise SqlRefused(f"table functions are not allowed: {_function_name(table.this)}()")
    if not isinstance(table.this, exp.Identifier):
        raise SqlRefused(f"not a table name: {table.sql()}")
    if table.args.get("db") or table.args.get("catalog"):
        raise SqlRefused(f"qualified table names are not allowed: {table.sql()}")
    for clause, value in table.args.items():
        if value and clause not in _TABLE_CLAUSES:
            what = "time travel" if clause in _TIME_TRAVEL else f"table clause {clause.upper()}"
            raise SqlRefused(f"{what} is not allowed: {table.sql(dialect='duckdb')}")
    name = table.name
    _check_name(name, "table name")
    if is_cte:
        return None
    if name not in allowed:
        raise SqlRefused(f"table {name!r} is not public; allowed: {', '.join(sorted(allowed))}")
    return name


def _check_name(name: str, what: str) -> None:
    """Table and CTE names must be plain ASCII identifiers: a path, a URL or a look-alike is
    refused rather than resolved (DuckDB would try to read a file named like it)."""
    if _PLAIN_NAME.fullmatch(name):
        return
    if any(char in _PATH_CHARACTERS for char in name):
        raise SqlRefused(f"{what} {name!r} looks like a file or URL; only tables can be read")
    reading = unicodedata.normalize("NFKC", name).lower()
    hint = f" (it reads as {reading!r})" if reading != name else ""
    raise SqlRefused(f"{what} {name!r} is not a plain ASCII identifier{hint}")


def _function_name(node: exp.Func) -> str:
    """The lower-cased name a function is called by: its own for an unknown (anonymous) one,
    sqlglot's for one it parsed into a typed expression."""
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower()


def _check_function(node: exp.Func) -> None:
    name = _function_name(node)
    known = ALLOWED_FUNCTIONS if isinstance(node, exp.Anonymous) else _TYPED_NAMES
    if name in known:
        return
    if isinstance(node.parent, (exp.Lateral, exp.From, exp.Join)):
        raise SqlRefused(f"table functions are not allowed: {name}()")
    raise SqlRefused(f"function {name}() is not allowed")


_TYPED_NAMES = ALLOWED_FUNCTIONS | SQLGLOT_SPELLINGS


# -- CTE visibility ------------------------------------------------------------------------------


def _cte_references(tree: exp.Expr) -> set[int]:
    """The ids of the Table nodes in ``tree`` that name a CTE visible where they stand.

    Two resolutions must agree: DuckDB's scoping rules, written out below, and sqlglot's scope
    analysis. sqlglot alone is not enough: it lets the anchor of a recursive CTE, and the body
    of a recursive INTERSECT / EXCEPT / UNION BY NAME, see the CTE, where DuckDB reads the real
    table of that name. Either one calling a name a real table makes it one, so it is checked.
    """
    return _cte_references_by_duckdb_rules(tree) & _cte_references_by_sqlglot_scope(tree)


def _cte_references_by_duckdb_rules(tree: exp.Expr) -> set[int]:
    references: set[int] = set()
    # (node, CTE names visible there, the CTE name if node is a recursive CTE's UNION)
    stack: list[tuple[exp.Expr, frozenset[str], str | None]] = [(tree, frozenset(), None)]
    while stack:
        node, visible, recursive_name = stack.pop()
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name in visible:
            references.add(id(node))
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With):
            recursive = bool(with_.args.get("recursive"))
            for cte in with_.expressions:
                body = cte.this
                if recursive and _is_recursive_union(body):
                    stack.append((body, visible, cte.alias))
                else:  # a non-recursive CTE does not see itself, only the ones before it
                    stack.append((body, visible, None))
                visible = visible | {cte.alias}
        for key, child in _children(node):
            if key == "with_":
                continue
            if recursive_name is not None and key == "expression":
                # the recursive step sees the CTE; the anchor (`this`) does not
                stack.append((child, visible | {recursive_name}, None))
            else:
                stack.append((child, visible, None))
    return references


def _is_recursive_union(body: exp.Expr) -> bool:
    """DuckDB makes a WITH RECURSIVE body recursive only for `anchor UNION [ALL] step`."""
    return type(body) is exp.Union and not body.args.get("by_name")


def _children(node: exp.Expr) -> list[tuple[str, exp.Expr]]:
    children = []
    for key, value in node.args.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, exp.Expr):
                children.append((key, item))
    return children


def _cte_references_by_sqlglot_scope(tree: exp.Expr) -> set[int]:
    try:
        scopes = traverse_scope(tree)
    except Exception:  # no scope analysis: nothing is a CTE, so every name is checked
        return set()
    return {
        id(table)
        for scope in scopes
        for table in scope.tables
        if not table.args.get("db") and table.name in scope.cte_sources
    }


# -- limits ------------------------------------------------------------------------------------


def _cap_limits(tree: exp.Expr, limit: int, max_offset: int) -> None:
    """Lower every LIMIT above ``limit`` to it, add one to the outermost query when it has
    none, and refuse LIMIT / OFFSET that are not plain numbers."""
    for node in list(tree.find_all(exp.Limit, exp.Fetch, exp.Offset)):
        if isinstance(node, exp.Offset):
            _offset_value(node.expression, max_offset)
            continue
        if isinstance(node, exp.Limit) and node.args.get("offset") is not None:
            _offset_value(node.args["offset"], max_offset)
        key = "count" if isinstance(node, exp.Fetch) else "expression"
        rows = _limit_rows(node)
        if rows is None or rows > limit:
            node.set(key, exp.Literal.number(limit))
    if tree.args.get("limit") is None:
        tree.set("limit", exp.Limit(expression=exp.Literal.number(limit)))


def _check_limits_capped(tree: exp.Expr, limit: int, max_offset: int) -> None:
    """Refuse a tree whose LIMITs are not all capped (the second reading of guard's output)."""
    if tree.args.get("limit") is None:
        raise SqlRefused("the outermost query has no LIMIT")
    for node in tree.find_all(exp.Limit, exp.Fetch, exp.Offset):
        if isinstance(node, exp.Offset):
            _offset_value(node.expression, max_offset)
            continue
        if isinstance(node, exp.Limit) and node.args.get("offset") is not None:
            _offset_value(node.args["offset"], max_offset)
        rows = _limit_rows(node)
        if rows is None or rows > limit:
            raise SqlRefused(f"a LIMIT is above {limit}")


def _limit_rows(node: exp.Limit | exp.Fetch) -> int | None:
    """The rows a LIMIT / FETCH asks for; None for LIMIT ALL. Refuses anything but a literal
    whole number: a subquery or parameter, a percentage, WITH TIES (which returns more)."""
    options = node.args.get("limit_options")
    if options is not None and (options.args.get("percent") or options.args.get("with_ties")):
        raise SqlRefused("LIMIT must be a number of rows (no PERCENT, no WITH TIES)")
    if isinstance(node, exp.Fetch):
        count = node.args.get("count")
        return 1 if count is None else _whole_number(count, "FETCH")
    value = node.expression
    if isinstance(value, exp.Var) and value.name.upper() == "ALL":
        return None
    return _whole_number(value, "LIMIT")


def _offset_value(value: exp.Expr, max_offset: int) -> int:
    offset = _whole_number(value, "OFFSET")
    if offset > max_offset:
        raise SqlRefused(f"OFFSET must be at most {max_offset}, got {offset}")
    return offset


def _whole_number(value: exp.Expr | None, clause: str) -> int:
    if isinstance(value, exp.Literal) and value.is_int:
        return int(value.to_py())
    shown = value.sql(dialect="duckdb") if value is not None else "nothing"
    raise SqlRefused(f"{clause} must be a whole-number literal, got {shown}")
