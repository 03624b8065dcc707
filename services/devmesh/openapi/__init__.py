"""Generate the OpenAPI 3.1 document of the REST edge from the contracts' descriptor set.

The document describes the wire format Envoy's gRPC-JSON transcoder speaks: proto3 JSON
names (camelCase), 64-bit integers as strings, enums by name, the well-known types in their
JSON forms, path and query parameters bound as the transcoder binds them, and the JSON error
body of every status the edge answers with. Run it as
`python -m services.devmesh.openapi DESCRIPTOR_SET OUT.json`; the descriptor set must carry
source info (`protoc --include_source_info --include_imports`) for the descriptions.
"""

from services.devmesh.openapi.document import PUBLIC_SERVICES, build, public_methods
from services.devmesh.openapi.operations import IDEMPOTENCY_HEADER

__all__ = ["IDEMPOTENCY_HEADER", "PUBLIC_SERVICES", "build", "public_methods"]
