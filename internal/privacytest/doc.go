// Package privacytest holds the end-to-end proof that turf keeps no full
// client address at rest: it runs the real turf binary as a subprocess,
// through normal operation, a ClickHouse outage and a crash, and then
// searches every byte turf left behind. The package has no non-test code.
package privacytest
