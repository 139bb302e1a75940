"""A tablet's enrollment request, signed with the keys it keeps (`wangge.sync.identity`).

The private keys are generated on the tablet and stored in its encrypted
database (`wangge.sync.atrest`), so they are exactly as safe as the worker's
data and never leave the device; the request carries only public halves.
"""
from __future__ import annotations

from wangge.sync.enrollment import EnrollmentRequest, make_request
from wangge.sync.identity import store_keys


def enrollment_request(store, name: str) -> EnrollmentRequest:
    """A signed enrollment request for this tablet, named ``name``."""
    keys = store_keys(store)
    return make_request(store.device_id, name, keys.public.sign, keys.public.box, keys.sign)
