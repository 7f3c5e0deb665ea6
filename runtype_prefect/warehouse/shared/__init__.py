"""A warehouse several workers share: Delta Lake tables and a put-if-absent run ledger on
object storage (``s3://bucket/prefix``), or in a directory (``file:///path``).

Needs the ``shared`` extra (deltalake, boto3). Only this package imports them, lazily.
"""

from .ledger import ObjectLedger, StartTakenError
from .location import SharedLocation, is_shared_location
from .objects import SharedStorageError, check_location, object_store
from .pull import Pulled, pull
from .tables import DeltaTables
from .warehouse import SharedWarehouse

__all__ = [
    "DeltaTables",
    "ObjectLedger",
    "Pulled",
    "SharedLocation",
    "SharedStorageError",
    "SharedWarehouse",
    "StartTakenError",
    "check_location",
    "is_shared_location",
    "object_store",
    "pull",
]
