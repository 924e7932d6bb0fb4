"""Results database: SQLAlchemy models, Alembic migrations, and the Database handle."""

from harness.db.database import Database, DatabaseError, open_database, resolve_url
from harness.db.models import RUN_STATUSES, CurvatureSnapshot, EvalRow, Run, RunOrigin, Sweep

__all__ = ["Database", "DatabaseError", "open_database", "resolve_url", "RUN_STATUSES",
           "Run", "RunOrigin", "Sweep", "EvalRow", "CurvatureSnapshot"]
