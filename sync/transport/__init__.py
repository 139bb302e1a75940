"""Transports that move bundles and photos and decide nothing: the HTTP client (`client`),
bundle files on a USB stick (`files`), watched folders and rule files (`watch`), and the glue
that runs a tablet's session over a client or an inbox (`fieldwork`)."""
