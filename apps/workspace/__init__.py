"""The documents workspace: documents indexed and embedded by jobs a database trigger
enqueues, search (text, semantic, hybrid), sheets of formulas recomputed in dependency
order, and Yjs collaboration state with periodic snapshots. ``workspace.app.install``."""
