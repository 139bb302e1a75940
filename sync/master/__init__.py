"""The master's side of sync: the exchange that answers a tablet's push (`exchange`), the
checks of every op it carries (`authorise`), ops held back (`quarantine`), bundles of revoked
tablets (`revoked`), the office's review (`review`), the signed device registry (`registry`)
and the collection of tombstones every tablet has seen (`tombstones`)."""
