// Package testrun runs an agent's conversation tests (tests/<slug>.yaml,
// compiled into compile.Test) against its deterministic responder and
// checks every expectation of every turn (CONTRACT §11).
//
// It is pure like the responder: no I/O, no clock, no ids. The same engine
// and tests always give the same Result, and Encode renders it as the
// deterministic compiled/tests.json a release tree holds.
package testrun
