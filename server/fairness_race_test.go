//go:build race

package server_test

// The race detector slows CPU-bound code 5–20×, so the fairness timings
// would measure it rather than the daemon.
func init() { raceDetector = true }
