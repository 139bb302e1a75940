"""The op log, the same on both sides: ops as they travel (`ops`), applied and merged into a
replica (`apply`, `merge`), the scope that decides which ops a tablet holds (`scope`), and the
sync protocol's own bookkeeping tables (`tables`)."""
