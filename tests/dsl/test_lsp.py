"""The language server, driven as an editor drives it: LSP JSON-RPC over a subprocess's stdio."""
from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading

import pytest

from wangge import dsl

BROKEN = """ruleset 街道 "某街道" / "A street"
import national
extends national

role 巡查员 "巡查员" / "Patroller" at 网格
channel 夜巡 "夜间巡查" / "Night patrol"

route channel 夜巡 to 社区 by 巡查猿
route item 0103 to 网络 by 巡查员
"""


class Editor:
    """The editor's side of a language server: framed JSON-RPC on the server's stdin and stdout."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-m", "wangge", "rules", "lsp"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.inbox: queue.Queue = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.process.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            self.inbox.put(json.loads(out.read(length)))

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}, ensure_ascii=False).encode("utf-8")
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def wait(self, matches, what: str, timeout: float = 30.0) -> dict:
        """The first message ``matches`` accepts (others are dropped); fails naming ``what`` on timeout."""
        while True:
            try:
                message = self.inbox.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"the language server sent no {what} within {timeout:.0f} s") from None
            if matches(message):
                return message

    def request(self, method: str, params: dict) -> dict:
        self.next_id += 1
        asked = self.next_id
        self.send({"id": asked, "method": method, "params": params})
        answer = self.wait(lambda m: m.get("id") == asked and "method" not in m, f"answer to {method}")
        assert "error" not in answer, answer
        return answer["result"]

    def notify(self, method: str, params: dict) -> None:
        self.send({"method": method, "params": params})

    def diagnostics(self, uri: str) -> list[dict]:
        message = self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                            and m["params"]["uri"] == uri, "publishDiagnostics")
        return message["params"]["diagnostics"]

    def close(self) -> int:
        self.request("shutdown", None)
        self.notify("exit", None)
        return self.process.wait(timeout=30)


@pytest.fixture
def editor():
    opened = Editor()
    yield opened
    if opened.process.poll() is None:
        opened.process.kill()
        opened.process.wait()


def test_diagnostics_definitions_and_completion_over_stdio(editor, tmp_path):
    path = tmp_path / "street.wg"
    path.write_text(BROKEN, encoding="utf-8")
    uri = path.as_uri()
    answer = editor.request("initialize", {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}})
    capabilities = answer["capabilities"]
    assert capabilities["definitionProvider"] and "completionProvider" in capabilities
    editor.notify("initialized", {})
    editor.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "wangge", "version": 1,
                                                            "text": BROKEN}})
    published = editor.diagnostics(uri)
    # The same problems `wangge rules check` finds, each at its line and column (0-based in LSP).
    checked = dsl.check([str(path)])
    assert len(published) == len(checked) >= 2
    assert sorted((d["range"]["start"]["line"], d["range"]["start"]["character"]) for d in published) == \
        sorted((c.line - 1, c.col - 1) for c in checked)
    typo = next(d for d in published if "巡查猿" in d["message"])
    line = BROKEN.splitlines()[typo["range"]["start"]["line"]]
    assert line[typo["range"]["start"]["character"]:typo["range"]["end"]["character"]] == "巡查猿"
    assert "did you mean 巡查员" in typo["message"] and typo["severity"] == 1
    assert any("网络" in d["message"] for d in published)

    # Go to definition: a role defined in the file, and a level defined in the imported baseline.
    lines = BROKEN.splitlines()
    at = next(n for n, text in enumerate(lines) if text.startswith("route item"))
    defined = next(n for n, text in enumerate(lines) if text.startswith("role 巡查员"))
    found = editor.request("textDocument/definition", {"textDocument": {"uri": uri},
                                                       "position": {"line": at, "character": lines[at].index("巡查员") + 1}})
    assert [(f["uri"], f["range"]["start"]["line"], f["range"]["start"]["character"]) for f in found] == [
        (uri, defined, len("role "))]
    channel_line = next(n for n, text in enumerate(lines) if text.startswith("route channel"))
    found = editor.request("textDocument/definition", {"textDocument": {"uri": uri}, "position": {
        "line": channel_line, "character": lines[channel_line].index("社区")}})
    assert found and all(f["uri"].endswith("/national.wg") for f in found)
    found = editor.request("textDocument/definition", {"textDocument": {"uri": uri},
                                                       "position": {"line": 1, "character": len("import na")}})
    assert ("national.wg", 0) in [(f["uri"].rsplit("/", 1)[1], f["range"]["start"]["line"]) for f in found]

    # Hover: what a code is.
    shown = editor.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                  "position": {"line": at, "character": lines[at].index("巡查员")}})
    assert "**Role** `巡查员` — 巡查员 / Patroller" in shown["contents"]["value"]

    # Completion: keywords from the grammar and the codes defined here and in the baseline.
    listed = editor.request("textDocument/completion", {"textDocument": {"uri": uri},
                                                        "position": {"line": at + 1, "character": 0}})
    labels = {item["label"] for item in listed["items"]}
    assert {"transition", "route", "escalation", "巡查员", "夜巡", "网格员"} <= labels
    narrowed = editor.request("textDocument/completion", {"textDocument": {"uri": uri},
                                                          "position": {"line": channel_line,
                                                                       "character": len("route ch")}})
    narrowed = {item["label"] for item in narrowed["items"]}
    assert {"channel", "channels"} <= narrowed and all(label.startswith("ch") for label in narrowed)

    # Fixing the file clears its diagnostics.
    fixed = BROKEN.replace("巡查猿", "巡查员").replace("网络", "网格")
    editor.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"text": fixed}]})
    assert editor.diagnostics(uri) == []
    assert editor.close() == 0


def test_a_syntax_error_is_a_diagnostic_and_the_server_keeps_going(editor, tmp_path):
    path = tmp_path / "bad.wg"
    text = 'ruleset x "x"\nrolee 网格员 "网格员"\nlevel 网格 "网格"\n'
    editor.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    editor.notify("initialized", {})
    editor.notify("textDocument/didOpen", {"textDocument": {"uri": path.as_uri(), "languageId": "wangge",
                                                            "version": 1, "text": text}})
    published = editor.diagnostics(path.as_uri())
    assert [(d["range"]["start"]["line"], d["range"]["start"]["character"]) for d in published] == [(1, 0)]
    assert "did you mean role?" in published[0]["message"]
    # A position with no code under it finds no definition, rather than failing.
    assert editor.request("textDocument/definition", {"textDocument": {"uri": path.as_uri()},
                                                      "position": {"line": 0, "character": 0}}) in ([], None)
    assert editor.close() == 0


def test_the_editor_extension_is_in_step_with_the_language():
    from pathlib import Path

    from wangge.dsl.lsp import textmate_grammar

    folder = Path(__file__).resolve().parents[2] / "editors" / "vscode"
    shipped = json.loads((folder / "syntaxes" / "wangge.tmLanguage.json").read_text(encoding="utf-8"))
    assert shipped == textmate_grammar(), ("the grammar's keywords changed: regenerate with "
                                           "`wangge rules lsp --textmate > editors/vscode/syntaxes/wangge.tmLanguage.json`")
    package = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    assert package["contributes"]["languages"][0]["extensions"] == [".wg"]
    assert package["contributes"]["grammars"][0]["scopeName"] == shipped["scopeName"]
    assert (folder / package["main"]).is_file()
