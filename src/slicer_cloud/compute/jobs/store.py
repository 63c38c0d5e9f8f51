"""Jobs in SQLite, in the same file as the item index (see :mod:`slicer_cloud.store.db`)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.db import Database
from slicer_cloud.store.index import now_iso

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        module TEXT NOT NULL,
        parameters TEXT NOT NULL,
        state TEXT NOT NULL,
        progress REAL NOT NULL DEFAULT 0,
        comment TEXT,
        log_tail TEXT NOT NULL DEFAULT '[]',
        return_parameters TEXT NOT NULL DEFAULT '{}',
        outputs TEXT NOT NULL DEFAULT '[]',
        created TEXT NOT NULL,
        started TEXT,
        finished TEXT,
        error TEXT,
        exit_code INTEGER,
        idempotency_key TEXT UNIQUE,
        request_hash TEXT,
        spec TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created)",
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state)",
]


@dataclass
class Job:
    id: str
    module: str
    parameters: dict[str, Any]
    state: str = "queued"
    progress: float = 0.0
    comment: str | None = None
    log_tail: list[str] = field(default_factory=list)
    return_parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    created: str = field(default_factory=now_iso)
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    exit_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "module": self.module, "parameters": self.parameters, "state": self.state,
            "progress": self.progress, "comment": self.comment, "log_tail": self.log_tail,
            "return_parameters": self.return_parameters, "outputs": self.outputs, "created": self.created,
            "started": self.started, "finished": self.finished, "error": self.error, "exit_code": self.exit_code,
        }

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        return cls(
            id=row["id"], module=row["module"], parameters=json.loads(row["parameters"]), state=row["state"],
            progress=row["progress"], comment=row["comment"], log_tail=json.loads(row["log_tail"]),
            return_parameters=json.loads(row["return_parameters"]), outputs=json.loads(row["outputs"]),
            created=row["created"], started=row["started"], finished=row["finished"], error=row["error"],
            exit_code=row["exit_code"],
        )


class JobStore:
    def __init__(self, db: Database):
        self.db = db
        with db.transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def create(self, job: Job, spec: dict[str, Any], idempotency_key: str | None, request_hash: str) -> tuple[Job, bool]:
        """Insert ``job``; with a key already used, the first job instead. (job, created?)"""
        with self.db.transaction() as conn:
            if idempotency_key:
                rows = conn.execute("SELECT * FROM jobs WHERE idempotency_key = ?", (idempotency_key,)).fetchall()
                if rows:
                    if rows[0]["request_hash"] != request_hash:
                        raise SlicerCloudError(
                            "This Idempotency-Key was already used for a different request.", status=409
                        )
                    return Job.from_row(rows[0]), False
            conn.execute(
                "INSERT INTO jobs (id, module, parameters, state, created, idempotency_key, request_hash, spec) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (job.id, job.module, json.dumps(job.parameters), job.state, job.created, idempotency_key,
                 request_hash, json.dumps(spec)),
            )
        return job, True

    def get(self, job_id: str) -> Job:
        rows = self.db.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise SlicerCloudError(f"No job with id {job_id!r}.", status=404)
        return Job.from_row(rows[0])

    def spec(self, job_id: str) -> dict[str, Any]:
        return json.loads(self.db.query("SELECT spec FROM jobs WHERE id = ?", (job_id,))[0]["spec"])

    def list(self, *, state: str | None = None, module: str | None = None, offset: int = 0, limit: int = 50) -> tuple[list[Job], int]:
        clauses, params = [], []
        if state:
            clauses.append("state = ?")
            params.append(state)
        if module:
            clauses.append("module = ?")
            params.append(module)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        total = self.db.query(f"SELECT COUNT(*) AS n FROM jobs {where}", tuple(params))[0]["n"]
        rows = self.db.query(f"SELECT * FROM jobs {where} ORDER BY created DESC, id LIMIT ? OFFSET ?", (*params, limit, offset))
        return [Job.from_row(r) for r in rows], total

    def update(self, job_id: str, conn: sqlite3.Connection | None = None, **fields: Any) -> None:
        encoded = {k: json.dumps(v) if k in ("log_tail", "return_parameters", "outputs", "parameters") else v for k, v in fields.items()}
        sql = "UPDATE jobs SET " + ", ".join(f"{k} = ?" for k in encoded) + " WHERE id = ?"
        if conn is not None:
            conn.execute(sql, (*encoded.values(), job_id))
        else:
            self.db.execute(sql, (*encoded.values(), job_id))

    def mark_running(self, job_id: str) -> None:
        self.db.execute(
            "UPDATE jobs SET state = 'running', started = ? WHERE id = ? AND state = 'queued'", (now_iso(), job_id)
        )

    def ids_in_state(self, *states: str) -> list[str]:
        marks = ",".join("?" for _ in states)
        return [r["id"] for r in self.db.query(f"SELECT id FROM jobs WHERE state IN ({marks}) ORDER BY created", states)]

    def interrupt_running(self) -> list[str]:
        """After a restart: jobs left 'running' become 'interrupted' (their process is gone)."""
        ids = self.ids_in_state("running")
        with self.db.transaction() as conn:
            for job_id in ids:
                conn.execute(
                    "UPDATE jobs SET state = 'interrupted', finished = ?, error = ? WHERE id = ?",
                    (now_iso(), "The server stopped while this job was running; submit it again.", job_id),
                )
        return ids
