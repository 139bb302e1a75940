// Starts `wangge rules lsp` over stdio for .wg files: diagnostics, go to definition, completion.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("wangge").get("command") || "wangge";
  const server = { command, args: ["rules", "lsp"] };
  client = new LanguageClient("wangge", "wangge rules", { run: server, debug: server }, {
    documentSelector: [{ scheme: "file", language: "wangge" }],
    synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.wg") },
  });
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
