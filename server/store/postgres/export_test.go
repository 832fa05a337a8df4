package postgres

// StampReads is how many times KeysStamp read the key revision from the
// database (the tests' view of the lease path).
func StampReads(s *Store) int64 { return s.watch.reads.Load() }
