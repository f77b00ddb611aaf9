"""The order lifecycle: from a signed order to a settled deal, across the engine, the chain, the
executors, the network and the content store. I/O lives here; decisions come from the pure packages."""
