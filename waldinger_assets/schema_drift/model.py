"""What a schema snapshot holds: the canonical definition of every database, schema, table and view, each
with a content hash. Pure data with a stable JSON form (the baseline file and the snapshot history use it)."""

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
        return cls(
            name=data["name"],
            data_type=data["type"],
            nullable=data["nullable"],
            default=data.get("default"),
            position=data["position"],
            comment=data.get("comment"),
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
        return cls(
            database=data["database"],
            schema=data.get("schema", ""),
            name=data.get("name", ""),
            object_type=data["object_type"],
            table_kind=data.get("table_kind"),
            comment=data.get("comment"),
            definition=data.get("definition"),
            columns=tuple(ColumnDefinition.from_json(c) for c in data.get("columns", ())),
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
        if data.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"unsupported snapshot format {data.get('format')!r} (expected {SNAPSHOT_FORMAT})")
        return cls.of(
            data["databases"],
            (ObjectDefinition.from_json(o) for o in data["objects"]),
            taken_at=data.get("taken_at"),
        )
