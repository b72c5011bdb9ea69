// Package incident turns a stream of verdicts into incidents, the unit an
// administrator reads: verdicts grouped by what attacked what while they
// keep coming.
//
// A Table holds one input partition's state. Observe takes one verdict at a
// time: the rules (Rules, read from a YAML file by ParseRules) may withhold
// it - an allow-list entry, a suppression, or a Suricata-style threshold
// (limit, threshold or both, tracked by source, destination or rule) - and
// say which rule did; otherwise the verdict joins the open incident of its
// Key or opens a new one. Due returns the messages to publish: every new
// incident at once, an open incident's update at most every
// Config.UpdateInterval, and the closing message once it has been quiet for
// Config.QuietPeriod. Changes returns the state entries changed since the
// last call, in a binary encoding (Apply reads them back), so that a caller
// can write them to a compacted changelog in the same transaction as the
// messages and restore the table after a crash.
//
// The package is pure: no I/O, no goroutines, no clock of its own (callers
// pass now). A Table is not safe for concurrent use; Rules are immutable
// and may be shared.
package incident
