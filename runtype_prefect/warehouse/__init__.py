"""The DuckDB warehouse: landing tables, idempotent bulk upserts, and the analytics snapshot.

It knows nothing of HTTP or Prefect: callers hand it Arrow tables and plain values.
"""

from .connection import (
    SchemaTooNewError,
    WarehouseCorruptError,
    WarehouseError,
    WarehouseFolderMissingError,
    WarehouseLockedError,
    WarehouseSettingError,
    connect,
    open_duckdb,
)
from .opening import location_key, open_warehouse
from .rows import (
    batch_record_results_table,
    record_results_table,
    records_table,
    step_results_table,
)
from .shared import SharedStorageError, SharedWarehouse, StartTakenError, is_shared_location
from .store import (
    DB_ENV,
    DEFAULT_DB,
    BatchIdentityError,
    Intent,
    JobKey,
    Selection,
    Warehouse,
    default_db_path,
    snapshot_path_for,
    validate_file,
)

__all__ = [
    "DB_ENV",
    "DEFAULT_DB",
    "BatchIdentityError",
    "Intent",
    "JobKey",
    "SchemaTooNewError",
    "Selection",
    "SharedStorageError",
    "SharedWarehouse",
    "StartTakenError",
    "Warehouse",
    "WarehouseCorruptError",
    "WarehouseError",
    "WarehouseFolderMissingError",
    "WarehouseLockedError",
    "WarehouseSettingError",
    "batch_record_results_table",
    "connect",
    "default_db_path",
    "is_shared_location",
    "location_key",
    "open_duckdb",
    "open_warehouse",
    "record_results_table",
    "records_table",
    "snapshot_path_for",
    "step_results_table",
    "validate_file",
]
