"""Layer 0, imports nothing of the project: errors (:mod:`.errors`), atomic file writes (:mod:`.atomic`), the
car frame (:mod:`.frame`), the drag physics (:mod:`.physics`) and the allocator setting (:mod:`.memory`)."""
