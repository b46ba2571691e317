"""What a schema snapshot holds: the canonical definition of every database, schema, table and view, each
with a content hash. Pure data with a stable JSON form (the baseline file and the snapshot history use it);
reading that form checks every field, since the baseline is a file people edit and merge by hand."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

SNAPSHOT_FORMAT = 1

DATABASE = "DATABASE"
SCHEMA = "SCHEMA"
TABLE = "TABLE"
VIEW = "VIEW"

_REQUIRED = object()
_JSON_TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer", list: "a list", dict: "an object"}
_COLUMN_FIELDS = frozenset({"name", "type", "nullable", "default", "position", "comment"})
_OBJECT_FIELDS = frozenset(
    {"database", "schema", "name", "object_type", "table_kind", "comment", "definition", "hash", "columns"}
)
_SNAPSHOT_FIELDS = frozenset({"format", "databases", "taken_at", "objects"})
_NAME_FIELDS = ("database", "schema", "name")


class SnapshotFormatError(ValueError):
    """A snapshot document with a missing, unknown or mistyped field. `places` say where, outermost first
    ("object DB.S.T", "column ID"); they are added on the way out, so reading a valid document pays nothing."""

    def __init__(self, problem: str, places: tuple[str, ...] = ()) -> None:
        super().__init__(f"{', '.join(places)}: {problem}" if places else problem)
        self.problem = problem
        self.places = places

    def within(self, place: str) -> SnapshotFormatError:
        return SnapshotFormatError(self.problem, (place, *self.places))


def _expected(expected: type, nullable: bool) -> str:
    return _JSON_TYPE_NAMES[expected] + (" or null" if nullable else "")


def _field(data: dict, name: str, expected: type, *, nullable: bool = False, default=_REQUIRED):
    """`data[name]`, checked to be of the JSON type `expected` (or null, when `nullable`)."""
    if name not in data:
        if default is _REQUIRED:
            raise SnapshotFormatError(f"field '{name}' is missing (it must be {_expected(expected, nullable)})")
        return default
    value = data[name]
    if value is None and nullable:
        return None
    # In Python a bool is an int; in the file, true is not a position.
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        raise SnapshotFormatError(f"field '{name}' must be {_expected(expected, nullable)}, not {json.dumps(value)}")
    return value


def _json_object(value, known_fields: frozenset[str]) -> dict:
    if not isinstance(value, dict):
        raise SnapshotFormatError(f"must be an object, not {json.dumps(value)}")
    if not value.keys() <= known_fields:
        unknown = sorted(value.keys() - known_fields)
        raise SnapshotFormatError(f"unknown field '{unknown[0]}' (the fields are {', '.join(sorted(known_fields))})")
    return value


def _place(kind: str, plural: str, index: int, data, name_fields: tuple[str, ...]) -> str:
    """Where an entry of a list sits, for errors: by its name when that is readable ("column ID"), else by
    its index ("columns[3]")."""
    parts = [data.get(field, "") for field in name_fields] if isinstance(data, dict) else [None]
    if all(isinstance(part, str) for part in parts) and any(parts):
        return f"{kind} {'.'.join(part for part in parts if part)}"
    return f"{plural}[{index}]"


@dataclass(frozen=True, slots=True)
class ColumnDefinition:
    name: str
    data_type: str  # canonical, e.g. NUMBER(38,0)
    nullable: bool
    default: str | None
    position: int
    comment: str | None

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "type": self.data_type,
            "nullable": self.nullable,
            "default": self.default,
            "position": self.position,
            "comment": self.comment,
        }

    @classmethod
    def from_json(cls, data: dict) -> ColumnDefinition:
        data = _json_object(data, _COLUMN_FIELDS)
        return cls(
            name=_field(data, "name", str),
            data_type=_field(data, "type", str),
            nullable=_field(data, "nullable", bool),
            default=_field(data, "default", str, nullable=True, default=None),
            position=_field(data, "position", int),
            comment=_field(data, "comment", str, nullable=True, default=None),
        )


@dataclass(frozen=True, slots=True)
class ObjectDefinition:
    """A database, schema, table or view. `schema` and `name` are empty for a database, `name` for a schema."""

    database: str
    schema: str
    name: str
    object_type: str  # DATABASE, SCHEMA, TABLE, VIEW (or EXTERNAL TABLE, DYNAMIC TABLE, ...)
    table_kind: str | None = None  # PERMANENT, TRANSIENT, TEMPORARY, ICEBERG, DYNAMIC, HYBRID
    comment: str | None = None
    definition: str | None = None  # a view's query, canonical
    columns: tuple[ColumnDefinition, ...] = ()
    content_hash: str = field(default="", compare=False)
    columns_hash: str = field(default="", compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.database, self.schema, self.name)

    @property
    def full_name(self) -> str:
        """DB.SCHEMA.NAME with each part as Snowflake stores it (the drift report's `object`)."""
        return ".".join(part for part in self.key if part)

    def with_hashes(self) -> ObjectDefinition:
        columns = [c.to_json() for c in self.columns]
        columns_hash = _sha256({"type": self.object_type, "columns": _shape(columns), "definition": self.definition})
        content = {
            "type": self.object_type,
            "kind": self.table_kind,
            "comment": self.comment,
            "definition": self.definition,
            "columns": columns,
        }
        return ObjectDefinition(
            database=self.database,
            schema=self.schema,
            name=self.name,
            object_type=self.object_type,
            table_kind=self.table_kind,
            comment=self.comment,
            definition=self.definition,
            columns=self.columns,
            content_hash=_sha256(content),
            columns_hash=columns_hash,
        )

    def to_json(self) -> dict:
        return {
            "database": self.database,
            "schema": self.schema,
            "name": self.name,
            "object_type": self.object_type,
            "table_kind": self.table_kind,
            "comment": self.comment,
            "definition": self.definition,
            "hash": self.content_hash,
            "columns": [c.to_json() for c in self.columns],
        }

    @classmethod
    def from_json(cls, data: dict) -> ObjectDefinition:
        """The stored hash is recomputed, not trusted."""
        data = _json_object(data, _OBJECT_FIELDS)
        _field(data, "hash", str, default="")
        columns: dict[str, ColumnDefinition] = {}
        for index, entry in enumerate(_field(data, "columns", list, default=[])):
            try:
                column = ColumnDefinition.from_json(entry)
            except SnapshotFormatError as error:
                raise error.within(_place("column", "columns", index, entry, ("name",))) from None
            if column.name in columns:
                raise SnapshotFormatError(f"column {column.name} appears more than once")
            columns[column.name] = column
        return cls(
            database=_field(data, "database", str),
            schema=_field(data, "schema", str, default=""),
            name=_field(data, "name", str, default=""),
            object_type=_field(data, "object_type", str),
            table_kind=_field(data, "table_kind", str, nullable=True, default=None),
            comment=_field(data, "comment", str, nullable=True, default=None),
            definition=_field(data, "definition", str, nullable=True, default=None),
            columns=tuple(columns.values()),
        ).with_hashes()


def _shape(columns: list[dict]) -> list[dict]:
    """Columns without their comments: what a renamed object must keep to count as the same object."""
    return [{k: v for k, v in column.items() if k != "comment"} for column in columns]


def _sha256(value) -> str:
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()


@dataclass(frozen=True)
class Snapshot:
    """Every object of the snapshotted databases, keyed by (database, schema, name)."""

    databases: tuple[str, ...]
    objects: dict[tuple[str, str, str], ObjectDefinition]
    taken_at: str | None = None
    queries: int = 0  # metadata queries it took (not part of the content)

    @classmethod
    def of(cls, databases: Iterable[str], objects: Iterable[ObjectDefinition], **kwargs) -> Snapshot:
        return cls(tuple(databases), {o.key: o for o in objects}, **kwargs)

    def __iter__(self) -> Iterator[ObjectDefinition]:
        return iter(self.objects[key] for key in sorted(self.objects))

    @property
    def content_hash(self) -> str:
        return _sha256([self.objects[key].content_hash for key in sorted(self.objects)])

    @property
    def column_count(self) -> int:
        return sum(len(o.columns) for o in self.objects.values())

    def count_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for obj in self.objects.values():
            counts[obj.object_type] = counts.get(obj.object_type, 0) + 1
        return dict(sorted(counts.items()))

    def restricted_to(self, databases: Iterable[str]) -> Snapshot:
        wanted = set(databases)
        return Snapshot(
            databases=tuple(d for d in self.databases if d in wanted),
            objects={k: o for k, o in self.objects.items() if o.database in wanted},
            taken_at=self.taken_at,
        )

    def to_lines(self) -> Iterator[str]:
        """The JSON document, one object per line block and one column per line, in a stable order, so a
        baseline change reads as a small diff in a pull request."""
        yield "{"
        yield f'  "format": {SNAPSHOT_FORMAT},'
        yield f'  "databases": {json.dumps(list(self.databases))},'
        if self.taken_at:
            yield f'  "taken_at": {json.dumps(self.taken_at)},'
        yield '  "objects": ['
        objects = list(self)
        for index, obj in enumerate(objects):
            data = obj.to_json()
            columns = data.pop("columns")
            head = json.dumps(data, ensure_ascii=False)[:-1]
            closing = "," if index < len(objects) - 1 else ""
            if not columns:
                yield f'    {head}, "columns": []}}{closing}'
                continue
            yield f'    {head}, "columns": ['
            for position, column in enumerate(columns):
                comma = "," if position < len(columns) - 1 else ""
                yield f"      {json.dumps(column, ensure_ascii=False)}{comma}"
            yield f"    ]}}{closing}"
        yield "  ]"
        yield "}"

    def to_text(self) -> str:
        return "\n".join(self.to_lines()) + "\n"

    @classmethod
    def from_json(cls, data: dict) -> Snapshot:
        """The snapshot a document holds; SnapshotFormatError names the first field that is missing, unknown or
        of the wrong type, and where it is."""
        if not isinstance(data, dict):
            raise SnapshotFormatError(f"the document must be an object, not {json.dumps(data)}")
        try:
            _json_object(data, _SNAPSHOT_FIELDS)
            if data.get("format") != SNAPSHOT_FORMAT:
                raise SnapshotFormatError(
                    f"unsupported snapshot format {json.dumps(data.get('format'))} (expected {SNAPSHOT_FORMAT})"
                )
            databases = data.get("databases")
            if not isinstance(databases, list) or not all(isinstance(database, str) for database in databases):
                raise SnapshotFormatError(f"field 'databases' must be a list of strings, not {json.dumps(databases)}")
            entries = _field(data, "objects", list)
            taken_at = _field(data, "taken_at", str, nullable=True, default=None)
        except SnapshotFormatError as error:
            raise error.within("top level") from None
        objects: dict[tuple[str, str, str], ObjectDefinition] = {}
        for index, entry in enumerate(entries):
            try:
                obj = ObjectDefinition.from_json(entry)
            except SnapshotFormatError as error:
                raise error.within(_place("object", "objects", index, entry, _NAME_FIELDS)) from None
            if obj.key in objects:
                raise SnapshotFormatError(f"object {obj.full_name} appears more than once")
            objects[obj.key] = obj
        return cls(tuple(databases), objects, taken_at=taken_at)
