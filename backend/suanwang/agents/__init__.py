"""Each party's own agent: a process with its own key and its own store, acting for that party alone."""
