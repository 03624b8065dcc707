"""`python -m services.devmesh.openapi DESCRIPTOR_SET OUT.json`: write the document."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

from services.devmesh.openapi.document import build, public_methods


def main(argv: list[str]) -> None:
    """Read a descriptor set and write the document: `openapi DESCRIPTORS OUT.json`."""
    descriptors, out = Path(argv[0]), Path(argv[1])
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(descriptors.read_bytes())
    document = build(descriptor_set, public_methods(descriptor_set))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
