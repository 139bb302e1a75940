"""The sync protocol: ops, merge, bundles, keys and transports."""
