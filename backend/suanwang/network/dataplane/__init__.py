"""The Linux SRv6 data plane in network namespaces (I/O, needs root): ``SRv6Lab`` and ``run_demo``."""
