"""A small GeoReport v2 client written from the specification alone (wiki.open311.org/GeoReport_v2
and /Service_Discovery), to test the office's endpoint as a city hotline's system would call it.

Every call names its format; XML answers are turned into the same lists and mappings the JSON
ones are, following the specification's element names (a list's items are its child elements).
"""
from __future__ import annotations

from typing import Any, Optional
from xml.etree import ElementTree

import httpx

#: The specification's list elements and their items' elements.
LISTS = {"services": "service", "attributes": "attribute", "values": "value", "endpoints": "endpoint",
         "formats": "format", "service_requests": "request", "errors": "error"}


class GeoReportError(Exception):
    def __init__(self, status: int, errors: list[dict]):
        super().__init__(f"HTTP {status}: {errors}")
        self.status, self.errors = status, errors


def _from_xml(element: ElementTree.Element) -> Any:
    if element.tag in LISTS:
        return [_from_xml(child) for child in element]
    if len(element):
        return {child.tag: _from_xml(child) for child in element}
    return element.text


class Client:
    def __init__(self, base_url: str, fmt: str = "json", api_key: Optional[str] = None):
        self.base, self.fmt, self.api_key = base_url.rstrip("/"), fmt, api_key

    def _answer(self, response: httpx.Response) -> Any:
        if self.fmt == "json":
            assert response.headers["content-type"].startswith("application/json")
            body = response.json()
        else:
            assert response.headers["content-type"].startswith("text/xml")
            assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
            body = _from_xml(ElementTree.fromstring(response.content))
        if response.status_code != 200:
            raise GeoReportError(response.status_code, body)
        return body

    def get(self, path: str, **params) -> Any:
        return self._answer(httpx.get(f"{self.base}/{path}.{self.fmt}", params=params))

    def discovery(self) -> dict:
        return self.get("discovery")

    def services(self) -> list[dict]:
        return self.get("services")

    def service_definition(self, code: str) -> dict:
        return self.get(f"services/{code}")

    def post_request(self, **fields) -> list[dict]:
        data = {**({"api_key": self.api_key} if self.api_key else {}), **fields}
        return self._answer(httpx.post(f"{self.base}/requests.{self.fmt}", data=data))

    def requests(self, **filters) -> list[dict]:
        return self.get("requests", **filters)

    def request(self, service_request_id: str) -> list[dict]:
        return self.get(f"requests/{service_request_id}")
