"""The tablet's side of sync: its exchange with the master (`exchange`), its session state
(`session`), its database encrypted at rest and the lease (`atrest`), and its sealed photos
and enrollment request (`tablet`)."""
