"""MongoDB adapters of the product service, one module per aggregate or capability."""
